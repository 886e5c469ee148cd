"""Which in-process engine for fer-webcam: the served SavedModel, or its TFLite twin (float32,
float16, or int8 calibrated on CALIBRATION_FACES training-split faces), against the same model
behind `fer-pipeline serve` over gRPC, in one run.

- accuracy on PublicTest (reported, never used to choose among checkpoints; here it gates an
  engine: a twin is accepted only within 0.5 points of the SavedModel);
- top-1 agreement with the SavedModel, PublicTest;
- latency of one Predict of 1 and of 4 faces (median and p95 of 300, after 20 warm-up calls),
  in this process on one thread for TFLite, and over gRPC to a server process.

    .venv/bin/python bench/tflite_bench.py --data ../shared/data/fer2013/fer2013.csv.gz \
        [--model models/pretrained/compact_resnet_v2] [--write-twin]

--write-twin writes the int8 twin into the SavedModel's folder (as the Trainer does for new
models), calibrated on the first training-split faces of --data.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def timed(predict, faces, calls=300, warm=20):
    for _ in range(warm):
        predict(faces)
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        predict(faces)
        seconds.append(time.perf_counter() - start)
    return {"p50_ms": round(float(np.percentile(seconds, 50)) * 1000, 3),
            "p95_ms": round(float(np.percentile(seconds, 95)) * 1000, 3)}


def main():
    from core import features

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="a FER CSV with Training and PublicTest rows")
    p.add_argument("--model", default=features.SHIPPED_MODEL_BASE_PATH)
    p.add_argument("--write-twin", action="store_true")
    args = p.parse_args()

    import tensorflow as tf

    from client.analyze import resolve_saved_model
    from client.tfserving import FerClient
    from models import tflite_export
    from serving_common import ServerProcess
    from tools import evaluate

    version = resolve_saved_model(args.model)
    with open(os.path.join(os.path.dirname(version), "model_card.json")) as f:
        card = json.load(f)
    labels, faces, _ = evaluate.read_usage(args.data, "PublicTest")
    _, train_faces, _ = evaluate.read_splits(args.data, (features.TRAIN_SPLIT,))
    calibration = train_faces[:tflite_export.CALIBRATION_FACES]
    model = tflite_export.keras_model_from_saved_model(version, card["model"])
    serve = tf.saved_model.load(version).signatures["serving_default"]

    def saved_model(batch):
        return serve(**{features.SERVING_IMAGE_INPUT: tf.constant(batch)})[features.SERVING_PROBABILITIES_OUTPUT].numpy()

    def interpreter_for(flatbuffer):
        interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=1)
        source, result = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
        state = {"rows": None}

        def predict(batch):
            if state["rows"] != len(batch):
                interpreter.resize_tensor_input(source, list(batch.shape))
                interpreter.allocate_tensors()
                state["rows"] = len(batch)
            interpreter.set_tensor(source, batch)
            interpreter.invoke()
            return interpreter.get_tensor(result)
        return predict

    reference = np.concatenate([saved_model(faces[i:i + 256]) for i in range(0, len(faces), 256)])
    engines = {"savedmodel": saved_model}
    sizes = {}
    for quantization in tflite_export.QUANTIZATIONS:
        flatbuffer = tflite_export.to_tflite(model, card["config"]["tta"], quantization, calibration)
        sizes[quantization] = len(flatbuffer)
        engines[f"tflite_{quantization}"] = interpreter_for(flatbuffer)
        if args.write_twin and quantization == "int8":
            with open(os.path.join(version, tflite_export.TFLITE_FILE), "wb") as f:
                f.write(flatbuffer)
    one, four = faces[:1], faces[:4]
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "model": version,
              "publictest_rows": int(len(labels)), "calibration_faces": int(len(calibration)), "engines": {}}
    for name, predict in engines.items():
        probabilities = reference if name == "savedmodel" else predict(np.ascontiguousarray(faces))
        report["engines"][name] = {
            "publictest_accuracy": round(float((probabilities.argmax(1) == labels).mean()), 4),
            "agreement_with_savedmodel": round(float((probabilities.argmax(1) == reference.argmax(1)).mean()), 4),
            "bytes": sizes.get(name.replace("tflite_", "")),
            "latency_1_face": timed(predict, np.ascontiguousarray(one)),
            "latency_4_faces": timed(predict, np.ascontiguousarray(four))}
        print(json.dumps({name: report["engines"][name]}), flush=True)
    server = ServerProcess(os.path.dirname(version))
    try:
        with FerClient(server.target, timeout_s=5.0, retries=0) as client:
            report["engines"]["grpc_savedmodel"] = {"latency_1_face": timed(client.predict, one[..., 0]),
                                                    "latency_4_faces": timed(client.predict, four[..., 0])}
    finally:
        server.stop()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
