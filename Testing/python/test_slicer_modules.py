"""The Slicer side without Slicer: API check, module file layout, .ui <-> .py names, and the pure-Python
helpers of LungAICommonLib (background CLI runner, result parsing, dependency check)."""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
MODULES_DIR = REPO / "LungAIModules"
sys.path.insert(0, str(MODULES_DIR / "LungAICommon"))

from LungAICommonLib import cli_runner, dependencies, results  # noqa: E402
from LungAICommonLib.cli_runner import CliJob, JobState  # noqa: E402

CHECKER = Path(os.environ.get("LUNGAI_SLICER_API", REPO.parent / "shared" / "slicer-api")) / "check_slicer_api.py"


def module_names() -> list:
    text = (REPO / "CMakeLists.txt").read_text()
    return re.findall(r"add_subdirectory\(LungAIModules/(\w+)\)", text)


MODULES = module_names()


# -- layout and API --------------------------------------------------------------------------------------------
def test_top_level_cmake_lists_the_seven_modules():
    assert MODULES == ["LungAICommon", "LungSegmentation", "PneumoniaAnalysis", "LowDoseDenoising",
                       "EmbolismDetection", "ChestXRay", "LungAIReview"]


def test_slicer_api_checker_finds_no_errors():
    if not CHECKER.is_file():
        pytest.skip(f"Slicer API checker {CHECKER} is absent (set LUNGAI_SLICER_API to its folder)")
    run = subprocess.run([sys.executable, str(CHECKER), str(MODULES_DIR)], capture_output=True, text=True,
                         timeout=120)
    summary = re.search(r"checked (\d+) files: (\d+) errors, (\d+) warnings", run.stdout)
    assert summary, run.stdout + run.stderr
    assert int(summary.group(1)) >= len(MODULES)
    assert int(summary.group(2)) == 0, run.stdout
    assert run.returncode == 0, run.stdout


@pytest.mark.parametrize("name", MODULES)
def test_module_folder_follows_the_scripted_module_template(name):
    folder = MODULES_DIR / name
    for relative in ("CMakeLists.txt", f"{name}.py", f"Resources/UI/{name}.ui", f"Resources/Icons/{name}.png",
                     "Testing/CMakeLists.txt", "Testing/Python/CMakeLists.txt"):
        assert (folder / relative).is_file(), f"{name}: {relative} is missing"
    cmake = (folder / "CMakeLists.txt").read_text()
    assert f"set(MODULE_NAME {name})" in cmake
    assert "slicerMacroBuildScriptedModule(" in cmake and "WITH_GENERIC_TESTS" in cmake
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in cmake
    scripts = re.search(r"set\(MODULE_PYTHON_SCRIPTS(.*?)\)", cmake, flags=re.S).group(1).split()
    python_files = {str(p.relative_to(folder)) for p in folder.rglob("*.py") if "__pycache__" not in p.parts}
    assert {s.replace("${MODULE_NAME}", name) for s in scripts} == python_files, "MODULE_PYTHON_SCRIPTS"
    for script in scripts:
        assert (folder / script.replace("${MODULE_NAME}", name)).is_file(), f"{name}: CMake lists {script}"
    from PIL import Image

    with Image.open(folder / f"Resources/Icons/{name}.png") as icon:
        assert icon.size == (128, 128)


def test_common_module_installs_the_lungai_core_package():
    cmake = (MODULES_DIR / "LungAICommon" / "CMakeLists.txt").read_text()
    core = re.search(r"set\(LUNGAI_CORE_DIR \$\{LUNGAI_REPO_DIR\}/(\S+)\)", cmake).group(1)
    assert re.search(r"set\(LUNGAI_REPO_DIR \$\{CMAKE_CURRENT_SOURCE_DIR\}/../..\)", cmake)
    assert (REPO / core / "__init__.py").is_file() and (REPO / core / "cli" / "__main__.py").is_file()
    assert "GLOB_RECURSE LUNGAI_CORE_FILES" in cmake and "install(FILES ${LUNGAI_CORE_DIR}" in cmake
    assert "${LUNGAI_INSTALL_DIR}/resources" in cmake  # where lungai.resources looks inside a package


def _classes(tree: ast.Module) -> dict:
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


MODULE_WIDGET_PY = MODULES_DIR / "LungAICommon" / "LungAICommonLib" / "module_widget.py"
VISIBLE_MODULES = [name for name in MODULES if name != "LungAICommon"]


def _widget_bases(name: str) -> list:
    """The widget's bases, followed through ``LungAIModuleWidget`` (which must come from LungAICommonLib)."""
    source = (MODULES_DIR / name / f"{name}.py").read_text()
    bases = [ast.unparse(b) for b in _classes(ast.parse(source))[f"{name}Widget"].bases]
    if "LungAIModuleWidget" in bases:
        assert "from LungAICommonLib.module_widget import LungAIModuleWidget" in source
        shared = _classes(ast.parse(MODULE_WIDGET_PY.read_text()))["LungAIModuleWidget"]
        bases += [ast.unparse(b) for b in shared.bases]
    return bases


@pytest.mark.parametrize("name", MODULES)
def test_module_python_defines_template_classes(name):
    tree = ast.parse((MODULES_DIR / name / f"{name}.py").read_text())
    classes = _classes(tree)
    bases = {cls: [ast.unparse(b) for b in node.bases] for cls, node in classes.items()}
    assert "ScriptedLoadableModule" in bases[name]
    widget_bases = _widget_bases(name)
    assert "ScriptedLoadableModuleWidget" in widget_bases and "VTKObservationMixin" in widget_bases
    assert "ScriptedLoadableModuleLogic" in bases[f"{name}Logic"]
    assert "ScriptedLoadableModuleTest" in bases[f"{name}Test"]
    test_methods = [n.name for n in classes[f"{name}Test"].body if isinstance(n, ast.FunctionDef)]
    assert "runTest" in test_methods and any(m.startswith("test_") for m in test_methods)
    hidden = "self.parent.hidden = True" in (MODULES_DIR / name / f"{name}.py").read_text()
    assert hidden == (name == "LungAICommon")


def _ui_widgets(path: Path) -> dict:
    root = ET.parse(path).getroot()
    widgets = {}
    for widget in root.iter("widget"):
        parameter = None
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                parameter = prop.findtext("string")
        widgets[widget.get("name")] = (widget.get("class"), parameter)
    return widgets


@pytest.mark.parametrize("name", MODULES)
def test_ui_parses_and_every_referenced_widget_exists(name):
    ui_path = MODULES_DIR / name / f"Resources/UI/{name}.ui"
    widgets = _ui_widgets(ui_path)
    root = ET.parse(ui_path).getroot()
    assert root.findtext("class") == name and root.find("widget").get("class") == "qMRMLWidget"
    source = (MODULES_DIR / name / f"{name}.py").read_text()
    used = set(re.findall(r"self\.ui\.(\w+)", source))
    assert used, f"{name}.py uses no widget of its .ui"
    if "LungAIModuleWidget" in _widget_bases(name):  # widgets the shared base refers to are in every .ui
        used |= set(re.findall(r"self\.ui\.(\w+)", MODULE_WIDGET_PY.read_text()))
    missing = sorted(used - set(widgets))
    assert not missing, f"{name}.py refers to widgets not in {ui_path.name}: {missing}"
    # every MRML widget is given the scene by the top widget's mrmlSceneChanged signal
    receivers = {c.findtext("receiver") for c in root.iter("connection")
                 if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"}
    combos = {w for w, (cls, _) in widgets.items() if cls in ("qMRMLNodeComboBox", "qMRMLTableView")}
    assert combos <= receivers, f"not connected to the scene: {sorted(combos - receivers)}"


@pytest.mark.parametrize("name", MODULES)
def test_parameter_names_in_ui_are_parameter_node_fields(name):
    tree = ast.parse((MODULES_DIR / name / f"{name}.py").read_text())
    fields = set()
    for node in _classes(tree).values():
        if any(ast.unparse(d) == "parameterNodeWrapper" for d in node.decorator_list):
            fields |= {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)}
    bound = {p for _, p in _ui_widgets(MODULES_DIR / name / f"Resources/UI/{name}.ui").values() if p}
    assert bound <= fields, f"{name}: .ui binds {sorted(bound - fields)} which the parameter node lacks"



def _widget_class(name: str) -> ast.ClassDef:
    return _classes(ast.parse((MODULES_DIR / name / f"{name}.py").read_text()))[f"{name}Widget"]


def _parameter_fields(name: str) -> set:
    fields = set()
    for node in _classes(ast.parse((MODULES_DIR / name / f"{name}.py").read_text())).values():
        if any(ast.unparse(d) == "parameterNodeWrapper" for d in node.decorator_list):
            fields |= {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)}
    return fields


@pytest.mark.parametrize("name", VISIBLE_MODULES)
def test_module_widget_uses_the_shared_lifecycle_and_lists_every_runner(name):
    widget = _widget_class(name)
    assert [ast.unparse(b) for b in widget.bases] == ["LungAIModuleWidget"]
    created = {t.attr for node in ast.walk(widget) if isinstance(node, ast.Assign)
               and isinstance(node.value, ast.Call) and ast.unparse(node.value.func) == "BackgroundCliRunner"
               for t in node.targets if isinstance(t, ast.Attribute)}
    methods = {n.name: n for n in widget.body if isinstance(n, ast.FunctionDef)}
    listed = ({"runner"} if "runners" not in methods else
              {n.attr for n in ast.walk(methods["runners"]) if isinstance(n, ast.Attribute)})
    assert created == listed, f"{name}: runners() must name every BackgroundCliRunner so cleanup cancels it"
    # the input chosen on entering the module is a parameter node field (unless the module opts out)
    opts_out = any(isinstance(s, ast.Assign) and ast.unparse(s) == "defaultInputClass = None" for s in widget.body)
    assert opts_out or "inputVolume" in _parameter_fields(name)
    # overrides of the shared lifecycle call the base, so binding and cancelling stay in one place
    for method in set(methods) & {"__init__", "setup", "enter", "exit", "onSceneStartClose", "onSceneEndClose",
                                  "initializeParameterNode"}:
        assert f"LungAIModuleWidget.{method}(self" in ast.unparse(methods[method]), f"{name}Widget.{method}"
    assert not set(methods) & {"cleanup", "setParameterNode"}, f"{name}Widget re-implements the shared lifecycle"


# -- background runner (pure Python part) -------------------------------------------------------------------------
def test_build_command_puts_global_options_before_the_subcommand():
    command = cli_runner.build_command(["lungs", Path("/data/ct.nii.gz"), "-o", "/out"], python="/py",
                                       device="cpu")
    assert command == ["/py", "-m", "lungai.cli", "--device", "cpu", "--json", "--progress", "json", "lungs",
                       str(Path("/data/ct.nii.gz")), "-o", "/out"]
    with pytest.raises(ValueError):
        cli_runner.build_command([], python="/py")
    with pytest.raises(ValueError):
        cli_runner.build_command(["lungs"], python="/py", device="gpu")


def test_progress_lines_are_parsed_and_other_lines_ignored():
    update = cli_runner.parse_progress_line('{"progress": 0.42, "message": "lungs: threshold"}\n')
    assert update == cli_runner.ProgressUpdate(0.42, "lungs: threshold")
    assert cli_runner.parse_progress_line('{"progress": 1.7}') == cli_runner.ProgressUpdate(1.0, "")
    for line in ("Traceback (most recent call last):", '{"outputs": {}}', "{broken", '{"progress": "x"}',
                 '{"progress": NaN}', ""):
        assert cli_runner.parse_progress_line(line) is None, line


def test_error_message_prefers_the_cli_error_line():
    lines = ['{"progress": 0.1, "message": "reading"}', "lungai: error: /x/ct.nii.gz: does not exist",
             "some later noise"]
    assert cli_runner.error_message(lines, 2) == "/x/ct.nii.gz: does not exist"
    assert cli_runner.error_message(["Usage: lungai lungs ...", "Error: No such option: --bad"], 2) == \
        "No such option: --bad"
    assert cli_runner.error_message(["Traceback", "ValueError: boom"], 1) == "ValueError: boom"
    assert cli_runner.error_message([], 1) == "lungai stopped with exit code 1"


def test_result_is_the_last_json_object_on_stdout():
    text = 'a warning printed by a library\n{\n  "outputs": {\n    "lungs": "/o/lungs.seg.nrrd"\n  }\n}\n'
    result = cli_runner.parse_result(text)
    assert cli_runner.output_paths(result) == {"lungs": Path("/o/lungs.seg.nrrd")}
    assert cli_runner.parse_result("") == {}
    with pytest.raises(cli_runner.ResultError):
        cli_runner.parse_result("no json here")
    with pytest.raises(cli_runner.ResultError):
        cli_runner.output_paths({"outputs": ["not", "a", "map"]})


FAKE_CLI = r"""
import json, sys, time
for i in range(3):
    print(json.dumps({"progress": i / 4, "message": f"step {i}"}), file=sys.stderr, flush=True)
    time.sleep(0.05)
print("not json, ignored", file=sys.stderr)
print(json.dumps({"volume_ml": 4321.5, "outputs": {"lungs": "/tmp/lungs.seg.nrrd"}}, indent=2))
"""


def _wait(job: CliJob, seconds: float = 30.0) -> list:
    updates, deadline = [], time.monotonic() + seconds
    while not job.finished and time.monotonic() < deadline:
        updates += job.poll()
        time.sleep(0.02)
    return updates


def test_job_reports_progress_then_result_and_outputs():
    job = CliJob([sys.executable, "-c", FAKE_CLI]).start()
    updates = _wait(job)
    assert job.state is JobState.SUCCEEDED, job.error
    assert [u.message for u in updates] == ["step 0", "step 1", "step 2"]
    assert job.result["volume_ml"] == 4321.5
    assert job.outputs == {"lungs": Path("/tmp/lungs.seg.nrrd")}
    assert job.stderr_lines == ["not json, ignored"]


def test_job_failure_carries_the_cli_message():
    script = "import sys; print('lungai: error: ct.nii.gz: not a CT (values 0..255)', file=sys.stderr); sys.exit(2)"
    job = CliJob([sys.executable, "-c", script]).start()
    _wait(job)
    assert job.state is JobState.FAILED and job.returncode == 2
    assert job.error == "ct.nii.gz: not a CT (values 0..255)"


def test_cancel_kills_the_process_and_its_children():
    script = ("import subprocess, sys, time\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
              "print(child.pid, flush=True)\n"
              "time.sleep(60)\n")
    job = CliJob([sys.executable, "-c", script]).start()
    deadline = time.monotonic() + 20
    while not job._stdout and time.monotonic() < deadline:
        job.poll()
        time.sleep(0.02)
    child_pid = int(job._stdout[0])
    started = time.monotonic()
    job.cancel()
    _wait(job, 10)
    assert job.state is JobState.CANCELLED and time.monotonic() - started < 5
    if os.name != "nt":
        for _ in range(100):  # the orphaned grandchild is reaped by init shortly after the kill
            try:
                os.kill(child_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"grandchild {child_pid} survived the cancel")


def test_injected_process_factory_is_used_with_popen_arguments():
    seen = {}

    def factory(command, **kwargs):
        seen["command"], seen["kwargs"] = command, kwargs
        return subprocess.Popen([sys.executable, "-c", "print('{\"outputs\": {}}')"], **kwargs)

    job = CliJob(["lungai-that-does-not-exist"], env=dict(os.environ), process_factory=factory).start()
    _wait(job)
    assert seen["command"] == ["lungai-that-does-not-exist"]
    assert seen["kwargs"]["stdout"] == subprocess.PIPE and seen["kwargs"]["stderr"] == subprocess.PIPE
    assert job.state is JobState.SUCCEEDED and job.outputs == {}
    with pytest.raises(RuntimeError):
        job.start()


def test_real_lungai_cli_runs_through_the_job(tmp_path):
    from lungai.image import Image
    from lungai.io import write_image

    path = write_image(Image.from_array(np.full((4, 5, 6), -800, np.int16), spacing=(0.7, 0.8, 2.5)),
                       tmp_path / "small.nrrd")
    env = cli_runner.process_environment()
    job = CliJob(cli_runner.build_command(["info", path, "--check", "volume"], python=sys.executable,
                                          device="cpu"), env=env).start()
    _wait(job, 60)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result["size_ijk"] == [6, 5, 4]
    missing = CliJob(cli_runner.build_command(["info", tmp_path / "absent.nii.gz"], python=sys.executable,
                                              device="cpu"), env=env).start()
    _wait(missing, 60)
    assert missing.state is JobState.FAILED and missing.returncode == 2
    assert "absent.nii.gz" in missing.error and "does not exist" in missing.error


def test_process_environment_makes_lungai_importable_and_unbuffered(tmp_path):
    env = cli_runner.process_environment({"PYTHONPATH": "/other"}, package_root=tmp_path, resources=tmp_path / "R")
    assert env["PYTHONPATH"].split(os.pathsep) == [str(tmp_path), "/other"]
    assert env["PYTHONUNBUFFERED"] == "1" and env["LUNGAI_RESOURCES"] == str(tmp_path / "R")


# -- dependencies and result shaping ----------------------------------------------------------------------------
def test_missing_requirements_lists_pip_names_of_absent_modules():
    present = {"numpy", "SimpleITK", "click"}
    missing = dependencies.missing_requirements(lambda name: object() if name in present else None)
    assert "torch>=2.2" in missing and "scikit-image>=0.21" in missing and "connected-components-3d>=3.12" in missing
    assert not any(r.startswith(("numpy", "SimpleITK", "click")) for r in missing)
    assert dependencies.missing_requirements(lambda name: object()) == []


def test_requirements_match_the_core_package_dependencies():
    text = (REPO / "LungAIExtension" / "pyproject.toml").read_text()
    declared = set(re.findall(r'^\s+"([A-Za-z0-9_.-]+[<>=][^"]*)",', text, flags=re.M))
    names = {re.split(r"[<>=]", r)[0].lower() for r in declared}
    ours = {re.split(r"[<>=]", r)[0].lower() for r in dependencies.REQUIREMENTS.values()}
    assert ours <= names, sorted(ours - names)


def test_centroid_from_lps_or_ras_columns():
    assert results.centroid_ras({"centroid_x": "10", "centroid_y": "-20.5", "centroid_z": "30"}) == [-10, 20.5, 30]
    assert results.centroid_ras({"centroid_r": 1, "centroid_a": 2, "centroid_s": 3}) == [1, 2, 3]
    assert results.centroid_ras({"centroid_lps": [4, 5, 6]}) == [-4, -5, 6]
    assert results.centroid_ras({"centroid_lps": "-12.5 30 -101.25"}) == [12.5, -30, -101.25]  # lesions.csv
    assert results.centroid_ras({"centroid_ras": "[1.5, 2, 3]"}) == [1.5, 2, 3]
    assert results.centroid_ras({"volume_ml": 3}) is None


def test_candidates_in_the_embolism_cli_format_give_their_ras_position():
    candidates = {"pe_score": 0.9, "candidates": [
        {"id": 1, "position_lps": [10.0, -20.0, 30.5], "position_ras": [-10.0, 20.0, 30.5], "confidence": 0.35,
         "level": "segmental", "side": "left", "occlusive": False},
        {"id": 2, "position_lps": [-4.0, 5.0, 6.0], "position_ras": [4.0, -5.0, 6.0], "confidence": 0.91,
         "level": "lobar", "side": "right", "occlusive": True}]}
    rows = results.candidate_rows(candidates)
    assert [r["id"] for r in rows] == [2, 1]
    assert results.centroid_ras(rows[0]) == [4.0, -5.0, 6.0]
    as_text = {k: str(v) for k, v in rows[1].items()}  # what the Slicer table gives back
    assert results.centroid_ras(as_text) == [-10.0, 20.0, 30.5] and results.confidence(as_text) == 0.35


def test_embolism_summary_reads_the_cli_result():
    result = {"pe_score": 0.87, "pe_present": True, "threshold": 0.5, "emboli_count": 2,
              "qanadli": {"index_percent": 17.5, "score": 7, "max_score": 40},
              "scorer": {"model": "embolism-candidates-fine", "version": "1.0.0", "working_grid_mm": [1.0, 1.0, 1.25]}}
    assert results.embolism_summary_lines(result) == ["PE probability: 0.87 (PE reported)", "Emboli above 0.5: 2",
                                                      "Qanadli obstruction index: 17.5 % (7/40)",
                                                      "Scored by embolism-candidates-fine 1.0.0 on a 1 x 1 x 1.25 mm grid"]


def test_xray_summary_reads_result_json():
    result = {"predicted_class": "bacterial", "predicted_title": "bacterial pneumonia",
              "probabilities": {"normal": 0.1, "bacterial": 0.7, "viral": 0.2}, "pneumonia_probability": 0.9,
              "checks": {"warnings": ["the image looks lateral"]}, "disclaimer": "Research use only."}
    assert results.xray_summary_lines(result) == ["Most likely: bacterial pneumonia (70 %)",
                                                  "Pneumonia (bacterial or viral): 90 %",
                                                  "Warning: the image looks lateral", "Research use only."]


def test_candidates_sorted_by_confidence_most_confident_first():
    rows = results.candidate_rows({"candidates": [{"id": 1, "confidence": 0.2}, {"id": 2},
                                                  {"id": 3, "confidence": 0.9}, {"id": 4, "score": 0.5}]})
    assert [r["id"] for r in rows] == [3, 4, 1, 2]


def test_probability_rows_sorted_and_figures_rows_one_per_structure():
    rows = results.probability_rows({"probabilities": {"normal": 0.1, "bacterial": 0.7, "viral": 0.2}})
    assert [r["class"] for r in rows] == ["bacterial", "viral", "normal"]
    figures = {"figures": {"right_lung": {"volume_ml": 2500.0, "mean_hu": -850.0, "hu_percentiles": {"p15": -910}},
                           "left_lung": {"volume_ml": 2200.0}, "right_left_ratio": 1.136,
                           "breathing_phase": {"phase": "inspiration", "confidence": 0.81}}}
    assert results.figures_rows(figures) == [
        {"structure": "right lung", "volume_ml": 2500.0, "mean_hu": -850.0, "hu_percentiles p15": -910},
        {"structure": "left lung", "volume_ml": 2200.0}]
    assert results.lung_summary_lines(figures) == ["Right/left volume ratio: 1.136",
                                                   "Breathing phase: inspiration (confidence 0.81)"]
    listed = {"version": 1, "structures": [{"name": "right lung", "volume": {"ml": 1.5}}]}
    assert results.figures_rows(listed) == [{"name": "right lung", "volume ml": 1.5}]


def test_pneumonia_and_followup_summaries_read_the_cli_results():
    summary = {"lesion_count": 3, "lesion_volume_ml": 41.5, "ground_glass_ml": 30.0, "consolidation_ml": 11.5,
               "percent_opacity": 4.2, "percent_high_opacity": 1.1, "severity_score": 6, "severity_max": 25,
               "severity_basis": "lobes", "call": "positive"}
    assert results.pneumonia_summary_lines({"summary": summary}) == [
        "Per-patient call: positive", "Severity score: 6 / 25 (lobes)",
        "Opacity: 4.2 % of the lungs (high opacity 1.1 %)",
        "Lesions: 3, 41.5 ml (ground glass 30 ml, consolidation 11.5 ml)"]
    later = dict(summary, percent_opacity=2.0, lesion_volume_ml=20.25, severity_score=4, call="negative")
    lines = results.followup_summary_lines({"summary": {"earlier": summary, "later": later,
                                                        "lesion_changes": {"shrunk": 2, "resolved": 1}}})
    assert lines == ["Opacity: 4.2 % -> 2 %", "Lesion volume: 41.5 ml -> 20.25 ml", "Severity score: 6 -> 4",
                     "Per-patient call: positive -> negative", "Lesions: 2 shrunk, 1 resolved"]


def test_noise_summaries_of_denoise_and_dose_simulation():
    denoised = {"method": "nlm", "strength": 1.0, "seconds": 9.87, "before": {"noise_std_hu": 59.7, "mean_hu": 40.2},
                "after": {"noise_std_hu": 16.0, "mean_hu": 40.1}}
    assert results.noise_summary_lines(denoised) == [
        "Method: nlm, strength 1", "Noise in flat soft tissue: 59.7 -> 16 HU", "Mean soft tissue: 40.2 -> 40.1 HU",
        "Time: 9.87 s"]
    simulated = {"dose_fraction": 0.25, "kernel_group": "smooth", "before": {"noise_std_hu": 10.0},
                 "after": {"noise_std_hu": 20.0}}
    assert results.noise_summary_lines(simulated) == ["Simulated 0.25 x dose (smooth kernel)",
                                                      "Noise in flat soft tissue: 10 -> 20 HU"]


def test_summary_lines_pick_known_keys_in_order():
    lines = results.summary_lines({"severity": {"score": 3}, "involvement_percent": 12.345,
                                   "call": "viral pneumonia likely"}, ["call", "involvement_percent", "score"])
    assert lines == ["Call: viral pneumonia likely", "Involvement percent: 12.35", "Score: 3"]


def test_pairs_csv_gets_header_once_and_relative_paths(tmp_path):
    results.append_pair_row(tmp_path / "pairs.csv", "c1", tmp_path / "c1_full.nrrd", tmp_path / "c1_q.nrrd", 0.25)
    results.append_pair_row(tmp_path / "pairs.csv", "c2", tmp_path / "c2_full.nrrd", tmp_path / "c2_q.nrrd", 0.5)
    lines = (tmp_path / "pairs.csv").read_text().splitlines()
    assert lines == ["case_id,full_dose,low_dose,dose_fraction", "c1,c1_full.nrrd,c1_q.nrrd,0.25",
                     "c2,c2_full.nrrd,c2_q.nrrd,0.5"]


# -- the command lines the modules build, checked against the real CLI ----------------------------------------
from LungAICommonLib import commands, embolism_review, review_labels  # noqa: E402


def _parse(arguments):
    """Parse ``arguments`` with the real click commands (validation only, nothing runs); skip when absent."""
    import click

    from lungai.cli.main import cli

    command, args, names = cli, list(arguments), []
    while isinstance(command, click.Group):
        name = args.pop(0)
        sub = command.get_command(click.Context(command), name)
        if sub is None:
            pytest.skip(f"`lungai {' '.join(names + [name])}` is not in this checkout yet")
        command, names = sub, names + [name]
    context = command.make_context(" ".join(["lungai"] + names), args)
    return context.params


@pytest.fixture()
def ct_file(tmp_path):
    from lungai.image import Image
    from lungai.io import write_image

    return write_image(Image.from_array(np.full((8, 16, 16), -800, np.int16)), tmp_path / "ct.nrrd")


def test_global_options_parse_with_the_real_cli(ct_file):
    import click

    from lungai.cli.main import cli

    command = cli_runner.build_command(["info", ct_file], python="py", device="cuda")[3:]
    context = cli.make_context("lungai", command)
    assert context.params == {"device": "cuda", "json_output": True, "progress": "json"}
    assert isinstance(cli.get_command(click.Context(cli), "info"), click.Command)


@pytest.mark.parametrize("build", [
    lambda ct, out: commands.lungs(ct, out, "classic"),
    lambda ct, out: commands.lungs(ct, out, "model", "lungs-unet@1.2.0"),
    lambda ct, out: commands.pneumonia_analyze(ct, out, "model", lungs_path=ct),
    lambda ct, out: commands.pneumonia_followup(ct, ct, out, "classic", ct, ct),
    lambda ct, out: commands.denoise(ct, out / "d.nrrd", "nlm", 1.5),
    lambda ct, out: commands.simulate_dose(ct, out / "s.nrrd", 0.25),
    lambda ct, out: commands.embolism(ct, out),
    lambda ct, out: commands.embolism(ct, out, 0.3, ct),
], ids=["lungs", "lungs-model", "pneumonia-analyze", "pneumonia-followup", "denoise", "simulate-dose",
        "embolism", "embolism-threshold-lungs"])
def test_analysis_command_lines_are_accepted_by_the_cli(build, ct_file, tmp_path):
    params = _parse(build(ct_file, tmp_path / "out"))
    assert params  # parsed into the command's parameters without a usage error


def test_xray_command_line_is_accepted_by_the_cli(tmp_path):
    from PIL import Image as PILImage

    picture = tmp_path / "cxr.png"
    PILImage.fromarray(np.zeros((128, 128), np.uint8)).save(picture)
    assert _parse(commands.xray(picture, tmp_path / "out", "1.0.0"))["model_version"] == "1.0.0"


def test_builders_refuse_bad_values():
    with pytest.raises(ValueError):
        commands.lungs("a", "b", "magic")
    with pytest.raises(ValueError):
        commands.denoise("a", "b", "median", 1.0)
    with pytest.raises(ValueError):
        commands.simulate_dose("a", "b", 0.0)
    with pytest.raises(ValueError):
        commands.simulate_dose("a", "b", 1.0)  # the CLI takes 0.01 <= dose < 1
    with pytest.raises(ValueError):
        commands.denoise("a", "b", "nlm", 1.6)
    with pytest.raises(ValueError):
        commands.review_status("reopen", "s", "c", "u", note=" ")
    with pytest.raises(ValueError):
        commands.review_status("delete", "s", "c", "u")
    with pytest.raises(ValueError):
        commands.review_propose("s", [], "nodules")
    assert commands.review_propose("s", ["c1"], "lobes", "lobes-unet@1.1.0") == [
        "review", "propose", "s", "c1", "--method", "model", "--model", "lobes-unet@1.1.0"]
    assert commands.review_propose("s", [], "lesions", tta=False)[-3:] == ["--method", "classic", "--no-tta"]
    assert commands.review_retrain("s", "lungs-unet@1.2.0", 5)[-4:] == ["--model", "lungs-unet", "--epochs", "5"]


def test_review_and_model_command_lines_parse(tmp_path, ct_file):
    store = tmp_path / "store"
    assert _parse(commands.review_init(store, "lungs"))["task"] == "lungs"
    assert _parse(commands.review_add(store, [ct_file], "ann"))["user"] == "ann"
    params = _parse(commands.review_save(store, "c1", ct_file, "ann", 61.4, "fixed base"))
    assert params["annotator"] == "ann" and params["time_spent"] == 61 and params["note"] == "fixed base"
    for action in commands.REVIEW_ACTIONS:
        assert _parse(commands.review_status(action, store, "c1", "rev", "why"))["user"] == "rev"
    params = _parse(commands.review_propose(store, ["c1", "c2"], "lungs", "lungs-unet@1.0.0"))
    assert params["case_ids"] == ("c1", "c2") and params["method"] == "model" and params["tta"] is True
    params = _parse(commands.review_retrain(store, "lungs-unet@1.0.0", 5))
    assert params["epochs"] == 5 and "lungs-unet" in params.values()


def test_review_loop_through_the_cli_as_the_review_module_runs_it(tmp_path):
    """What LungAIReview does on Save version / Submit / Approve, with the real store and command line."""
    from lungai.image import Image
    from lungai.io import write_image
    from lungai.review import ReviewStore

    store = ReviewStore.create(tmp_path / "store", "lungs", {1: "right_lung", 2: "left_lung", 3: "airways"})
    image = Image.from_array(np.full((6, 20, 24), -1000, np.int16), spacing=(1.5, 1.5, 3.0))
    store.add_case(image, "case01", user="test")
    store.start("case01", "ann")
    store.add_proposal("case01", image.like(np.zeros(image.shape, np.uint8)), {"model": "lungs-unet@1.0.0"})
    labels = np.zeros(image.shape, np.uint8)
    labels[1:5, 4:16, 2:10] = review_labels.label_for_segment("Right Lung", store.labels)
    labels[1:5, 4:16, 14:22] = review_labels.label_for_segment("left_lung", store.labels)
    correction = write_image(image.like(labels), tmp_path / "correction.nii.gz")
    env = cli_runner.process_environment()
    steps = [commands.review_save(store.folder, "case01", correction, "ann", 42.0, "first pass"),
             commands.review_status("submit", store.folder, "case01", "ann"),
             commands.review_status("approve", store.folder, "case01", "rev", "looks right")]
    for arguments in steps:
        job = CliJob(cli_runner.build_command(arguments, python=sys.executable, device="cpu"), env=env).start()
        _wait(job, 60)
        assert job.state is JobState.SUCCEEDED, f"{arguments}: {job.error}"
    record = store.case("case01")
    assert record.status == "approved" and record.versions[0].annotator == "ann"
    assert record.versions[0].time_spent_s == 42.0
    np.testing.assert_array_equal(store.load_version("case01").array, labels)
    choices = review_labels.entry_choices(record)
    assert [key for key, _ in choices] == ["v1", "p1"]  # newest first
    assert choices[0][1].startswith("version 1 by ann") and choices[0][1].endswith(" - first pass")
    assert "lungs-unet@1.0.0" in choices[1][1]
    assert review_labels.parse_entry_key("v1") == ("version", 1)
    with pytest.raises(ValueError):
        review_labels.parse_entry_key("x1")
    rows = review_labels.case_rows(store.cases())
    assert rows[0]["case"] == "case01" and rows[0]["status"] == "approved" and rows[0]["versions"] == 1
    assert rows[0]["proposals"] == 1


def test_store_labels_map_segment_names_both_ways():
    labels = {1: "ground_glass", 2: "consolidation"}
    definitions = review_labels.segment_definitions(labels)
    assert [(d.label, d.name) for d in definitions] == [(1, "ground-glass opacity"), (2, "consolidation")]
    assert review_labels.label_for_segment("Ground-glass opacity", labels) == 1
    assert review_labels.label_for_segment("ground_glass", labels) == 1
    assert review_labels.label_for_segment("Segment_1", labels) is None


def test_accepted_emboli_keep_only_accepted_components(tmp_path):
    from lungai.image import Image
    from lungai.io import Segment, read_segmentation, write_segmentation

    emboli = np.zeros((20, 30, 30), np.uint8)
    emboli[5:8, 5:8, 5:8] = 1      # candidate A (27 voxels)
    emboli[12:16, 20:24, 20:24] = 1  # candidate B (64 voxels)
    image = Image.from_array(emboli, spacing=(0.8, 0.8, 1.0), origin=(-10.0, 5.0, 100.0))
    path = write_segmentation(image, [Segment.from_structure(1, "embolus")], tmp_path / "emboli.seg.nrrd")

    def ras_of(k, j, i):
        x, y, z = image.index_to_lps([i, j, k])
        return {"centroid_r": -x, "centroid_a": -y, "centroid_s": z}

    rows = [{"id": "A", "confidence": 0.9, **ras_of(6, 6, 6)},
            {"id": "B", "confidence": 0.7, **ras_of(14, 21.5, 21.5)},
            {"id": "C", "confidence": 0.2, **ras_of(0, 29, 0)}]  # far from every component
    written = embolism_review.save_accepted(path, rows, {"A": "rejected", "B": "accepted", "C": "accepted"},
                                            tmp_path / "case", reviewer="dr x")
    saved, segments = read_segmentation(written["accepted_emboli"])
    assert int(saved.array.sum()) == 64 and saved.array[14, 21, 21] == 1 and saved.array[6, 6, 6] == 0
    assert segments[0].name == "pulmonary embolus"
    review = json.loads(written["review"].read_text())
    assert review["accepted"] == 2 and abs(review["accepted_volume_ml"] - 64 * 0.64 / 1000) < 1e-9
    assert written["without_mask"] == ["C"] and review["accepted_without_mask"] == ["C"]
    assert [c["status"] for c in review["candidates"]] == ["rejected", "accepted", "accepted"]
    assert embolism_review.load_statuses(written["review"]) == {"A": "rejected", "B": "accepted", "C": "accepted"}
    with pytest.raises(ValueError):
        embolism_review.save_accepted(path, rows, {"A": "maybe"}, tmp_path / "case")


# -- the Qt side of the runner, with stand-ins for qt and slicer ------------------------------------------------
class _Signal:
    def __init__(self):
        self.slots = []

    def __call__(self, *args):
        for slot in self.slots:
            slot(*args)


class _Widget:
    def __init__(self):
        self.enabled, self.visible, self.text, self.value = True, False, "", 0
        self._signals = {}

    def connect(self, signal, slot):
        self._signals.setdefault(signal, _Signal()).slots.append(slot)

    def emit(self, signal, *args):
        self._signals[signal](*args)

    def setValue(self, value):
        self.value = value


class _Timer(_Widget):
    def setInterval(self, ms):
        self.interval = ms

    def start(self):
        self.active = True

    def stop(self):
        self.active = False


@pytest.fixture()
def fake_slicer(monkeypatch):
    """Minimal ``qt`` and ``slicer`` modules: enough for LungAICommonLib.background, recording what it shows."""
    import contextlib
    import types

    shown = {"errors": [], "status": []}
    qt = types.ModuleType("qt")
    qt.QTimer = _Timer
    slicer = types.ModuleType("slicer")

    @contextlib.contextmanager
    def try_with_error_display(message, waitCursor=False):
        try:
            yield
        except Exception as exc:  # shown to the user, as Slicer does
            shown["errors"].append(f"{message} {exc}")

    slicer.util = types.SimpleNamespace(
        settingsValue=lambda key, default: "cpu" if key == "LungAI/Device" else default,
        showStatusMessage=lambda text, ms=0: shown["status"].append(text),
        errorDisplay=lambda text, **kwargs: shown["errors"].append(text),
        tryWithErrorDisplay=try_with_error_display)
    slicer.app = types.SimpleNamespace(processEvents=lambda: None)
    monkeypatch.setitem(sys.modules, "qt", qt)
    monkeypatch.setitem(sys.modules, "slicer", slicer)
    monkeypatch.delitem(sys.modules, "LungAICommonLib.background", raising=False)
    import LungAICommonLib.background as background

    yield background, shown
    monkeypatch.delitem(sys.modules, "LungAICommonLib.background", raising=False)


def _poll_until_done(runner, seconds=30.0):
    deadline = time.monotonic() + seconds
    while runner.timer.active and time.monotonic() < deadline:
        runner._poll()
        time.sleep(0.02)


def test_background_runner_drives_progress_bar_and_callbacks(fake_slicer):
    background, shown = fake_slicer
    bar, label, cancel, apply_button = _Widget(), _Widget(), _Widget(), _Widget()
    seen = {}

    def fake_cli(command, **kwargs):  # the lungai command line is replaced by the fake CLI script
        seen["command"] = command
        return subprocess.Popen([sys.executable, "-c", FAKE_CLI], **kwargs)

    runner = background.BackgroundCliRunner(bar, label, cancel, busyWidgets=[apply_button], processFactory=fake_cli)
    results = []
    runner.start(["lungs", "ct.nrrd", "-o", "out"], lambda result, outputs: results.append((result, outputs)),
                 label="Lungs", onDone=lambda: results.append("done"))
    assert seen["command"][2:6] == ["lungai.cli", "--device", "cpu", "--json"]  # device from the setting
    assert runner.running and not apply_button.enabled and cancel.enabled
    with pytest.raises(RuntimeError):
        runner.start(["lungs"], lambda r, o: None)
    _poll_until_done(runner)
    assert len(results) == 2 and results[1] == "done"  # the panel is updated after the results are loaded
    assert results[0][0]["volume_ml"] == 4321.5
    assert results[0][1] == {"lungs": Path("/tmp/lungs.seg.nrrd")}
    assert bar.value == 100 and label.text == "Lungs: done" and apply_button.enabled and not cancel.enabled
    assert "Lungs: step 2" in shown["status"] and not shown["errors"]


def test_background_runner_shows_errors_and_cancels(fake_slicer):
    background, shown = fake_slicer
    label, cancel = _Widget(), _Widget()
    failing = "import sys; print('lungai: error: ct.nrrd: not a CT', file=sys.stderr); sys.exit(2)"
    runner = background.BackgroundCliRunner(statusLabel=label, cancelButton=cancel, processFactory=lambda c, **kw:
                                            subprocess.Popen([sys.executable, "-c", failing], **kw))
    runner.start(["lungs", "ct.nrrd"], lambda r, o: pytest.fail("must not succeed"), label="Lungs")
    _poll_until_done(runner)
    assert shown["errors"] == ["Lungs failed:\n\nct.nrrd: not a CT"]
    assert label.text == "Lungs failed: ct.nrrd: not a CT"

    sleeper = "import time; time.sleep(60)"
    runner = background.BackgroundCliRunner(statusLabel=label, cancelButton=cancel, processFactory=lambda c, **kw:
                                            subprocess.Popen([sys.executable, "-c", sleeper], **kw))
    runner.start(["lungs", "ct.nrrd"], lambda r, o: pytest.fail("must not succeed"), label="Lungs")
    cancel.emit("clicked(bool)", True)  # the panel's Cancel button
    _poll_until_done(runner, 10)
    assert runner.job.state is JobState.CANCELLED and label.text == "Lungs: cancelled"
    assert len(shown["errors"]) == 1  # a cancel is not an error


def test_failing_result_callback_is_reported_not_raised(fake_slicer):
    background, shown = fake_slicer
    runner = background.BackgroundCliRunner(processFactory=lambda c, **kw:
                                            subprocess.Popen([sys.executable, "-c", FAKE_CLI], **kw))

    def broken(result, outputs):
        raise FileNotFoundError("lungs.seg.nrrd")

    runner.start(["lungs"], broken, label="Lungs", onDone=lambda: pytest.fail("results were not loaded"))
    _poll_until_done(runner)
    assert shown["errors"] == ["Lungs: loading the results failed. lungs.seg.nrrd"]


def test_done_callback_belongs_to_its_job_when_a_result_starts_the_next(fake_slicer):
    background, shown = fake_slicer
    runner = background.BackgroundCliRunner(processFactory=lambda c, **kw:
                                            subprocess.Popen([sys.executable, "-c", FAKE_CLI], **kw))
    done = []

    def chain(result, outputs):  # like "create store" opening the store, which may run the next command
        runner.start(["second"], label="Second", onDone=lambda: done.append("second"))

    runner.start(["first"], chain, label="First", onDone=lambda: done.append("first"))
    _poll_until_done(runner)  # polls until the second job ends too
    assert done == ["first", "second"] and not shown["errors"]


# -- the shared widget lifecycle, with stand-ins for slicer and vtk ------------------------------------------------
class _FakeParameterNode:
    def __init__(self, inputVolume=None):
        self.inputVolume = inputVolume
        self.connected, self.disconnected = [], []

    def connectGui(self, ui):
        self.connected.append(ui)
        return f"tag{len(self.connected)}"

    def disconnectGui(self, tag):
        self.disconnected.append(tag)


class _FakeRunner:
    def __init__(self):
        self.cancelled = 0

    def cancel(self):
        self.cancelled += 1


@pytest.fixture()
def module_widget(monkeypatch):
    """LungAICommonLib.module_widget imported against minimal ``slicer`` and ``vtk`` modules."""
    import types

    events = []
    scene = types.SimpleNamespace(StartCloseEvent="StartClose", EndCloseEvent="EndClose", volumes=[],
                                  GetFirstNodeByClass=lambda cls: (scene.volumes or [None])[0]
                                  if cls == "vtkMRMLScalarVolumeNode" else None)

    class ScriptedLoadableModuleWidget:
        def __init__(self, parent=None):
            self.parent = parent
            self.moduleName = type(self).__name__[:-len("Widget")]

        def setup(self):
            self.layout = types.SimpleNamespace(addWidget=lambda w: events.append(("layout", w.path)))

        def resourcePath(self, filename):
            return f"/modules/{self.moduleName}/Resources/{filename}"

    class VTKObservationMixin:
        def __init__(self):
            self.observations = []

        def addObserver(self, obj, event, method):
            self.observations.append((obj, event, method))

        def removeObserver(self, obj, event, method):  # tolerant of an observation already removed, as Slicer's
            if (obj, event, method) in self.observations:
                self.observations.remove((obj, event, method))

        def removeObservers(self):
            self.observations.clear()

    class UiWidget:
        def __init__(self, path):
            self.path, self.scene = path, None

        def setMRMLScene(self, scene):
            self.scene = scene

    slicer = types.ModuleType("slicer")
    slicer.mrmlScene = scene
    slicer.util = types.ModuleType("slicer.util")
    slicer.util.loadUI = UiWidget
    slicer.util.childWidgetVariables = lambda widget: types.SimpleNamespace(top=widget)
    slicer.util.VTKObservationMixin = VTKObservationMixin
    slm = types.ModuleType("slicer.ScriptedLoadableModule")
    slm.ScriptedLoadableModuleWidget = ScriptedLoadableModuleWidget
    vtk = types.ModuleType("vtk")
    vtk.vtkCommand = types.SimpleNamespace(ModifiedEvent="Modified")
    for name, module in (("slicer", slicer), ("slicer.util", slicer.util), ("slicer.ScriptedLoadableModule", slm),
                         ("vtk", vtk)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "LungAICommonLib.module_widget", raising=False)
    import LungAICommonLib.module_widget as module_widget

    yield module_widget.LungAIModuleWidget, scene, events
    monkeypatch.delitem(sys.modules, "LungAICommonLib.module_widget", raising=False)


def _module_parent(entered: bool):
    """The module's ``parent`` as the widget sees it: only whether the module is shown."""
    import types

    return types.SimpleNamespace(isEntered=entered)


def _panel_class(base, sceneRunners=None, defaultInputClass="vtkMRMLScalarVolumeNode"):
    """A module widget written the way the LungAI modules write theirs: a logic, a runner, a second runner."""
    import types

    class DemoWidget(base):
        def setup(self):
            base.setup(self)
            self.parameterNode = _FakeParameterNode()
            self.logic = types.SimpleNamespace(getParameterNode=lambda: self.parameterNode)
            self.runner, self.otherRunner = _FakeRunner(), _FakeRunner()
            self.updates = 0
            self.initializeParameterNode()

        def runners(self):
            return [self.runner, self.otherRunner]

        def _updateGui(self, caller=None, event=None):
            self.updates += 1

    DemoWidget.defaultInputClass = defaultInputClass
    if sceneRunners is not None:
        DemoWidget.sceneRunners = sceneRunners
    return DemoWidget


def test_module_widget_loads_its_ui_and_binds_the_parameter_node(module_widget):
    base, scene, events = module_widget
    ctVolume = object()
    scene.volumes = [ctVolume]
    panel = _panel_class(base)(_module_parent(entered=True))
    panel.setup()
    assert events == [("layout", "/modules/Demo/Resources/UI/Demo.ui")] and panel.ui.top.scene is scene
    node = panel.parameterNode
    assert node.inputVolume is ctVolume and node.connected == [panel.ui] and panel.updates == 1
    assert (scene, "StartClose", panel.onSceneStartClose) in panel.observations
    assert (scene, "EndClose", panel.onSceneEndClose) in panel.observations
    assert (node, "Modified", panel._updateGui) in panel.observations

    chosen = object()  # a chosen input is kept when the module is entered again
    node.inputVolume = chosen
    panel.exit()
    assert node.disconnected == ["tag1"] and panel._parameterNodeGuiTag is None
    assert (node, "Modified", panel._updateGui) not in panel.observations
    panel.enter()
    assert node.inputVolume is chosen and node.connected == [panel.ui, panel.ui]
    assert (node, "Modified", panel._updateGui) in panel.observations and panel.updates == 2


def test_module_widget_follows_scene_close_and_cancels_runners(module_widget):
    base, scene, _ = module_widget
    parent = _module_parent(entered=False)
    panel = _panel_class(base, sceneRunners=lambda self: [self.runner])(parent)
    panel.setup()
    node = panel.parameterNode
    panel.onSceneStartClose(scene, "StartClose")
    assert (panel.runner.cancelled, panel.otherRunner.cancelled) == (1, 0)  # only the scene's runner stops
    assert panel._parameterNode is None and node.disconnected == ["tag1"]
    panel.onSceneEndClose(scene, "EndClose")
    assert panel._parameterNode is None  # not entered: nothing is bound until the module is shown
    parent.isEntered = True
    panel.onSceneEndClose(scene, "EndClose")
    assert panel._parameterNode is node and len(node.connected) == 2

    panel.otherRunner = None  # a runner never created is skipped
    panel.cleanup()
    assert panel.runner.cancelled == 2 and panel.observations == []


def test_module_widget_without_default_input_leaves_the_node_alone(module_widget):
    base, scene, _ = module_widget
    scene.volumes = [object()]
    panel = _panel_class(base, defaultInputClass=None)(_module_parent(entered=True))
    panel.setup()
    assert panel.parameterNode.inputVolume is None
    panel.onSceneStartClose(scene, "StartClose")
    assert (panel.runner.cancelled, panel.otherRunner.cancelled) == (1, 1)  # by default every runner stops


# -- the self-tests' synthetic data through the real CLI, as the modules run it ------------------------------------
from LungAICommonLib import synthetic  # noqa: E402


def _run_cli(arguments, seconds=300.0):
    job = CliJob(cli_runner.build_command(arguments, python=sys.executable, device="cpu"),
                 env=cli_runner.process_environment()).start()
    _wait(job, seconds)
    return job


def _write_ct(data, path):
    from lungai.image import Image
    from lungai.io import write_image

    return write_image(Image.from_ijk_to_ras(data["ct"], data["ijk_to_ras"]), path)


def _require(name):
    import click

    from lungai.cli.main import cli

    if cli.get_command(click.Context(cli), name) is None:
        pytest.skip(f"`lungai {name}` is not in this checkout yet")


def test_lung_segmentation_self_test_data_gives_the_true_volumes(tmp_path):
    _require("lungs")
    thorax = synthetic.thorax()
    job = _run_cli(commands.lungs(_write_ct(thorax, tmp_path / "thorax.nrrd"), tmp_path / "out", "classic"))
    assert job.state is JobState.SUCCEEDED, job.error
    rows = {r["structure"]: r for r in results.figures_rows(json.loads(job.outputs["figures"].read_text()))}
    assert rows["right lung"]["volume_ml"] == pytest.approx(thorax["right_ml"], rel=0.15)
    assert rows["left lung"]["volume_ml"] == pytest.approx(thorax["left_ml"], rel=0.15)
    assert {"lungs_seg", "zones_seg", "figures"} <= set(job.outputs)


@pytest.mark.slow  # 10-30 s on 2 busy cores; run with -m slow
def test_pneumonia_self_test_data_finds_both_lesions(tmp_path):
    _require("pneumonia")
    chest = synthetic.pneumonia_chest()
    job = _run_cli(commands.pneumonia_analyze(_write_ct(chest, tmp_path / "chest.nrrd"), tmp_path / "out",
                                              pdf=False))
    assert job.state is JobState.SUCCEEDED, job.error
    lesions = list(csv.DictReader(open(tmp_path / "out" / "lesions.csv", encoding="utf-8")))
    total = sum(float(row["volume_ml"]) for row in lesions)
    assert total == pytest.approx(chest["ground_glass_ml"] + chest["consolidation_ml"], rel=0.5)
    assert {row["type"] for row in lesions} == {"ground_glass", "consolidation"}
    first = results.centroid_ras(lesions[0])  # the row a click jumps to lies inside the image
    assert first is not None and -256 < first[0] <= 0 and -192 < first[1] <= 0 and 0 <= first[2] < 120
    lines = results.pneumonia_summary_lines(json.loads((tmp_path / "out" / "results.json").read_text()))
    assert lines[0] == "Per-patient call: positive"
    assert (tmp_path / "out" / "histogram.csv").is_file() and (tmp_path / "out" / "report.html").is_file()


@pytest.mark.slow  # 10-30 s on 2 busy cores; run with -m slow
def test_denoising_self_test_data_loses_most_of_its_noise(tmp_path):
    _require("denoise")
    from lungai.io import read_image

    phantom = synthetic.noisy_phantom(60.0)
    job = _run_cli(commands.denoise(_write_ct(phantom, tmp_path / "noisy.nrrd"), tmp_path / "d.nrrd", "nlm", 1.0))
    assert job.state is JobState.SUCCEEDED, job.error
    denoised = read_image(tmp_path / "d.nrrd", check="none").array
    before = synthetic.tissue_noise(phantom["ct"], phantom["tissue"])
    assert synthetic.tissue_noise(denoised, phantom["tissue"]) < 0.6 * before
    assert results.noise_summary_lines(job.result)[0] == "Method: nlm, strength 1"


@pytest.mark.slow  # about 10 s on 2 busy cores; run with -m slow
def test_dose_simulation_self_test_data_gets_noisier_and_makes_a_pair(tmp_path):
    _require("simulate-dose")
    from lungai.io import read_image

    phantom = synthetic.noisy_phantom(60.0)
    full = _write_ct(phantom, tmp_path / "case_full.nrrd")
    low = tmp_path / "case_dose0.25.nrrd"
    job = _run_cli(commands.simulate_dose(full, low, 0.25))
    assert job.state is JobState.SUCCEEDED, job.error
    before = synthetic.tissue_noise(phantom["ct"], phantom["tissue"])
    after = synthetic.tissue_noise(read_image(low, check="none").array, phantom["tissue"])
    assert after > 1.5 * before  # quarter dose: about twice the quantum noise
    results.append_pair_row(tmp_path / "pairs.csv", "case", full, low, 0.25)
    assert (tmp_path / "pairs.csv").read_text().splitlines()[1] == "case,case_full.nrrd,case_dose0.25.nrrd,0.25"
    assert results.noise_summary_lines(job.result)[0].startswith("Simulated 0.25 x dose")
