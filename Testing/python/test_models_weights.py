"""Weights: loopback download (good, corrupted, unreachable), offline import, verify/remove, no implicit download."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch

from lungai.cli.main import main as cli_main
from lungai.errors import InputError
from lungai.models import (WeightsError, download_weights, import_weights, load_network, remove_weights,
                           verify_weights, weights_path)
from lungai.models.registry import ModelEntry, add_to_registry
from lungai.progress import Progress

from test_models_helpers import TOY_TEMPLATE


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LUNGAI_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture()
def served(tmp_path):
    """A loopback HTTP server over ``tmp_path/www`` that counts requests."""
    root = tmp_path / "www"
    root.mkdir()
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            hits.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def _weights_file(path: Path) -> Path:
    torch.manual_seed(0)
    torch.save({"w": torch.randn(64, 64)}, path)
    return path


def _entry(path: Path, url=None, name="toy-lungs") -> ModelEntry:
    data = path.read_bytes()
    return ModelEntry.from_dict(dict(TOY_TEMPLATE, name=name, version="1.0.0", card="cards/x.md",
                                     weights={"file": f"{name}-1.0.0.pt", "size": len(data),
                                              "sha256": hashlib.sha256(data).hexdigest(), "url": url}))


def _leftovers(home: Path):
    folder = home / "models" / "weights"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_good_file_with_progress_then_cached(home, served, tmp_path):
    root, base, hits = served
    good = _weights_file(root / "toy.pt")
    entry = _entry(good, f"{base}/toy.pt")
    assert weights_path(entry) is None and verify_weights(entry).state == "missing"
    seen = []
    path = download_weights(entry, Progress(lambda f, m: seen.append(f)))
    assert path == home / "models" / "weights" / "toy-lungs-1.0.0.pt"
    assert path.read_bytes() == good.read_bytes() and seen[-1] == pytest.approx(1.0)
    assert verify_weights(entry).state == "ok" and verify_weights(entry).location == "cache"
    download_weights(entry)  # verified copy present: no second transfer
    assert len(hits) == 1


def test_corrupted_download_is_refused_and_nothing_is_kept(home, served):
    root, base, _ = served
    good = _weights_file(root / "toy.pt")
    entry = _entry(good, f"{base}/bad.pt")
    data = bytearray(good.read_bytes())
    data[200] ^= 0xFF  # one flipped byte, same size
    (root / "bad.pt").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match the registry"):
        download_weights(entry)
    assert _leftovers(home) == []
    (root / "short.pt").write_bytes(good.read_bytes()[:-10])  # truncated transfer
    with pytest.raises(WeightsError, match="refused"):
        download_weights(entry, url=f"{base}/short.pt")
    with pytest.raises(WeightsError, match="cannot download"):
        download_weights(entry, url=f"{base}/absent.pt")
    assert _leftovers(home) == []


def test_missing_weights_never_trigger_a_download(home, served):
    root, base, hits = served
    entry = _entry(_weights_file(root / "toy.pt"), f"{base}/toy.pt")
    with pytest.raises(WeightsError, match="lungai models download toy-lungs"):
        load_network(entry)
    assert hits == [] and _leftovers(home) == []


def test_import_from_file_and_folder_and_refuse_wrong_file(home, tmp_path):
    source = _weights_file(tmp_path / "copied_by_hand.pt")
    entry = _entry(source)
    path = import_weights(entry, source)
    assert verify_weights(entry).state == "ok" and path.read_bytes() == source.read_bytes()
    assert remove_weights(entry) == path and verify_weights(entry).state == "missing"
    usb = tmp_path / "usb" / "nested"
    usb.mkdir(parents=True)
    (usb / "renamed.pt").write_bytes(source.read_bytes())  # found by hash under another name
    import_weights(entry, tmp_path / "usb")
    assert verify_weights(entry).state == "ok"
    other = tmp_path / "other.pt"
    torch.save({"w": torch.zeros(3)}, other)
    with pytest.raises(InputError, match="SHA256 differs"):
        import_weights(_entry(source, name="second"), other)
    with pytest.raises(InputError, match="does not exist"):
        import_weights(entry, tmp_path / "nowhere.pt")
    assert sorted(_leftovers(home)) == ["toy-lungs-1.0.0.pt"]


def test_verify_reports_a_corrupted_cached_file(home, tmp_path):
    source = _weights_file(tmp_path / "w.pt")
    entry = _entry(source)
    path = import_weights(entry, source)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    status = verify_weights(entry)
    assert status.state == "corrupt" and "SHA256" in status.detail
    with pytest.raises(WeightsError, match="corrupted"):
        load_network(entry)


def test_cli_import_verify_list_remove(home, tmp_path, capsys, monkeypatch):
    source = _weights_file(tmp_path / "w.pt")
    entry = _entry(source, name="cli-model")
    add_to_registry(entry, home / "models" / "registry.json")
    assert cli_main(["--progress", "none", "models", "verify", "cli-model"]) == 1
    assert cli_main(["--progress", "none", "models", "import", "cli-model", str(source)]) == 0
    assert cli_main(["--progress", "none", "models", "verify", "cli-model"]) == 0
    capsys.readouterr()
    assert cli_main(["--json", "models", "list"]) == 0
    import json
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    assert rows["cli-model"]["status"] == "ok" and rows["cli-model"]["sha256"] == entry.sha256
    assert cli_main(["--progress", "none", "models", "remove", "cli-model"]) == 0
    assert verify_weights(entry).state == "missing"
    assert cli_main(["--progress", "none", "models", "import", "cli-model", str(tmp_path / "none.pt")]) == 2
