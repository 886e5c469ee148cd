"""Runs tasks of a compiled KFP v2 pipeline on this machine the way the KFP v2 launcher runs
them in a pod: it builds each task's ExecutorInput (the `{{$}}` placeholder) from the spec
(constants, runtime parameters, upstream output artifacts), runs the container's command and
arguments exactly as compiled (the FileBasedExampleGen driver first, when the task has one),
and reads back the ExecutorOutput. The project checkout stands in for the image: paths under
the image's project directory are mapped to it."""

import json
import os
import subprocess
import sys
from typing import Any, Dict, List

from kubeflow import config

PLACEHOLDER = "{{$}}"


class TaskFailed(RuntimeError):
    pass


class LocalLauncher:
    def __init__(self, job: Dict[str, Any], workdir: str, parameters: Dict[str, Any], project_dir: str):
        self.spec = job["pipelineSpec"]
        self.workdir = workdir
        self.parameters = parameters
        self.project_dir = project_dir
        self.outputs: Dict[str, Dict[str, List[dict]]] = {}

    def _in_checkout(self, value):
        if isinstance(value, str) and value.startswith(config.IMAGE_PROJECT_DIR + "/"):
            return self.project_dir + value[len(config.IMAGE_PROJECT_DIR):]
        return value

    def executor_input(self, task_name: str) -> Dict[str, Any]:
        task = self.spec["root"]["dag"]["tasks"][task_name]
        component = self.spec["components"][task["componentRef"]["name"]]
        parameters = {}
        for name, source in task["inputs"].get("parameters", {}).items():
            if "runtimeValue" in source:
                parameters[name] = self._in_checkout(source["runtimeValue"]["constant"])
            else:
                parameters[name] = self.parameters[source["componentInputParameter"]]
        artifacts = {}
        for name, source in task["inputs"].get("artifacts", {}).items():
            producer = source["taskOutputArtifact"]["producerTask"]
            if producer in self.outputs:  # a resolver that did not run leaves an optional input empty
                artifacts[name] = {"artifacts": self.outputs[producer][source["taskOutputArtifact"]["outputArtifactKey"]]}
        task_dir = os.path.join(self.workdir, task_name)
        outputs = {
            name: {"artifacts": [{"name": f"{task_name}-{name}", "type": definition["artifactType"],
                                  "uri": os.path.join(task_dir, name), "metadata": {}}]}
            for name, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items()
        }
        return {"inputs": {"parameterValues": parameters, "artifacts": artifacts},
                "outputs": {"artifacts": outputs, "outputFile": os.path.join(task_dir, "executor_output.json")}}

    def _exec(self, task_name: str, command: List[str], args: List[str], invocation: str, timeout: int) -> None:
        argv = [sys.executable if c == "python" else c for c in command]
        argv += [invocation if a == PLACEHOLDER else a for a in args]
        env = {**os.environ, "PYTHONPATH": self.project_dir}
        result = subprocess.run(argv, cwd=self.project_dir, env=env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise TaskFailed(f"{task_name}: {' '.join(argv[:3])} exited {result.returncode}\n{result.stderr[-4000:]}")

    def run(self, task_name: str, timeout: int = 600) -> Dict[str, List[dict]]:
        component = self.spec["components"][self.spec["root"]["dag"]["tasks"][task_name]["componentRef"]["name"]]
        container = self.spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
        executor_input = self.executor_input(task_name)
        os.makedirs(os.path.dirname(executor_input["outputs"]["outputFile"]), exist_ok=True)
        invocation = json.dumps(executor_input)
        driver = container.get("lifecycle", {}).get("preCacheCheck")
        if driver:
            self._exec(task_name, driver["command"], driver["args"], invocation, timeout)
        self._exec(task_name, container["command"], container["args"], invocation, timeout)
        with open(executor_input["outputs"]["outputFile"]) as f:
            executor_output = json.load(f)
        produced = {name: value["artifacts"] for name, value in executor_output.get("artifacts", {}).items()}
        self.outputs[task_name] = {}
        for name, value in executor_input["outputs"]["artifacts"].items():
            # The launcher records an output with the type its spec declares; the
            # ExecutorOutput carries uri and metadata (split names, counts, ...) only.
            declared = value["artifacts"][0]
            self.outputs[task_name][name] = [{**declared, **artifact, "type": declared["type"]}
                                             for artifact in produced.get(name, value["artifacts"])]
        return self.outputs[task_name]
