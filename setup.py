"""FER pipeline: a TFX pipeline for facial emotion recognition on FER-2013."""

from setuptools import find_namespace_packages, find_packages, setup

setup(
    name="fer-pipeline",
    version="0.1.0",
    description="TFX pipeline reproducing Saravanan et al., Facial Emotion Recognition using CNNs",
    python_requires=">=3.9,<3.11",
    # kubeflow/ is a namespace package (no __init__.py), so that it does not shadow the kubeflow.*
    # namespace of Kubeflow's own SDKs installed beside it (kubeflow.training, kubeflow.katib, ...).
    packages=find_packages(include=["core*", "cli*", "pipeline*", "components*", "models*", "schema*", "fer_artifacts*",
                                    "dashboard*", "serving*", "client*", "tools*"])
    + find_namespace_packages(include=["kubeflow*"]),
    package_data={"schema": ["*.pbtxt"], "kubeflow": ["flink/*.yaml"],
                  "models": ["pretrained/*/*.md", "pretrained/*/*.json", "pretrained/*/*/fer.tflite",
                             "pretrained/*/*/saved_model.pb",
                                                     "pretrained/*/*/variables/*", "pretrained/*/*/fingerprint.pb",
                                                     "pretrained/*/*/assets/*"]},
    install_requires=[
        "tfx[kfp]==1.16.0",
        "tensorflow==2.16.2",
        "keras==3.6.0",
        "tf-keras==2.16.0",
        "apache-beam[gcp]==2.59.0",
        "numpy<2",
        "h11==0.16.0",  # the local server's REST transport
        "prometheus_client==0.26.0",  # the local server's /monitoring/prometheus/metrics
    ],
    entry_points={"console_scripts": ["fer-pipeline=cli.main:main", "fer-webcam=client.webcam:main"]},
)
