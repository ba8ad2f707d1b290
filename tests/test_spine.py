"""The training spine and ONNX spine: train a tiny network, export, check parity,
refuse tampered models, run with tiling."""
from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

from mltem import MltemError  # noqa: E402
from mltem.cli import main  # noqa: E402
from mltem.infer import OnnxModel  # noqa: E402
from mltem.registry import MODELS_ENV, find_model, list_models, sha256_file  # noqa: E402
from mltem.training import TrainConfig, export_checkpoint, load_checkpoint, load_config, register_task, train  # noqa: E402

from _toy_task import DiskTask, disks  # noqa: E402

register_task("toy-disks", DiskTask)

CONFIG = """
task: toy-disks
seed: 7
max_epochs: 4
batch_size: 8
lr: 0.01
data: {n: 48, size: 32}
augment: {flips: true}
export: {name: toy-disks-unet}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    (d / "toy.yaml").write_text(CONFIG)
    cfg = load_config(d / "toy.yaml")
    res = train(cfg, d / "run")
    return d, cfg, res


def test_training_learns_the_toy_task(trained):
    _, _, res = trained
    # 4 epochs of 40 images: the disks are 3.3 sigma above the noise; a U-Net that learned
    # nothing scores the background fraction (~0.8); a learning one clearly more.
    assert res["metrics"]["val_acc"] > 0.9
    assert res["global_step"] == 4 * 5


def test_training_is_deterministic(trained, tmp_path):
    d, cfg, res = trained
    again = train(cfg, tmp_path / "again")
    a = load_checkpoint(res["checkpoint"])["state_dict"]
    b = load_checkpoint(again["checkpoint"])["state_dict"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_export_parity_and_card(trained, tmp_path):
    _, _, res = trained
    card = export_checkpoint(res["checkpoint"], tmp_path / "models")
    assert card.name == "toy-disks-unet" and card.task == "toy-disks"
    assert card.sha256 == sha256_file(tmp_path / "models" / "toy-disks-unet.onnx")
    assert card.metrics["onnx_parity_max_abs"] <= 1e-4
    assert card.classes == ["background", "disk"]
    saved = json.loads((tmp_path / "models" / "toy-disks-unet.json").read_text())
    assert saved["recipe"]["config"]["seed"] == 7 and saved["opset"] >= 17
    assert saved["inputs"][0]["shape"] == ["batch", 1, None, None]
    # The ONNX model gives torch's answer on new data, at any batch size and frame size.
    ckpt = load_checkpoint(res["checkpoint"])
    from mltem.training._run import build_from_checkpoint

    net = build_from_checkpoint(ckpt)
    x, _ = disks(5, 64, seed=99)
    m = OnnxModel(card)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    assert_allclose(m(x), ref, atol=1e-4)
    assert_allclose(m.predict(x, batch_size=2), ref, atol=1e-4)


def test_tampered_model_is_refused(trained, tmp_path, monkeypatch):
    _, _, res = trained
    card = export_checkpoint(res["checkpoint"], tmp_path / "m")
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "m"))
    assert find_model("toy-disks-unet").sha256 == card.sha256
    assert [c.name for c in list_models() if c.folder == tmp_path / "m"] == ["toy-disks-unet"]
    p = tmp_path / "m" / "toy-disks-unet.onnx"
    blob = bytearray(p.read_bytes())
    blob[-100] ^= 0xFF
    p.write_bytes(bytes(blob))
    with pytest.raises(MltemError, match="does not match the sha256 in its card"):
        find_model("toy-disks-unet")
    with pytest.raises(MltemError, match="does not match the sha256"):
        OnnxModel(str(p))
    assert main(["models"]) == 2
    with pytest.raises(MltemError, match="no model named 'nope'"):
        find_model("nope")
    with pytest.raises(MltemError, match="is for task 'toy-disks', not 'segment'"):
        p.write_bytes(bytes(blob[:-100] + bytes([blob[-100] ^ 0xFF]) + blob[-99:]))
        find_model("toy-disks-unet", task="segment")


def test_cli_train_and_export(tmp_path, capsys):
    cfg = tmp_path / "toy.yaml"
    cfg.write_text(CONFIG.replace("max_epochs: 4", "max_epochs: 1"))
    assert main(["--quiet", "train", "toy-disks", "--config", str(cfg), "--out", str(tmp_path / "run"), "--export", str(tmp_path / "models")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["command"] == "train" and summary["models"][0]["name"] == "toy-disks-unet"
    assert summary["results"]["onnx_parity_max_abs"] <= 1e-4
    assert main(["export", str(tmp_path / "run" / "model.ckpt"), "--out", str(tmp_path / "models")]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "run" / "model.ckpt"), "--out", str(tmp_path / "models"), "--name", "other"]) == 0
    assert (tmp_path / "models" / "other.json").exists()


def test_checkpoints_never_unpickle(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p = tmp_path / "evil.ckpt"
    torch.save({"format": "mltem-checkpoint-1", "x": Evil()}, p, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(MltemError, match="not a readable mltem checkpoint"):
        load_checkpoint(p)
    torch.save({"format": "something else"}, tmp_path / "other.ckpt")
    with pytest.raises(MltemError, match="not an mltem checkpoint"):
        load_checkpoint(tmp_path / "other.ckpt")


@pytest.mark.parametrize(
    "text, match",
    [
        ("task: toy-disks\nbogus: 1\n", "unknown key"),
        ("seed: 1\n", "needs a 'task'"),
        ("task: toy-disks\nbatch_size: two\n", "'batch_size' must be an integer"),
        ("task: toy-disks\nval_fraction: 1.5\n", "between 0 and 1"),
        ("task: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_configs(tmp_path, text, match):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(MltemError, match=match):
        load_config(p)


def test_unknown_task_and_network():
    from mltem.nets import create_net
    from mltem.training import get_task

    with pytest.raises(MltemError, match="no trainable task named 'nope'"):
        get_task("nope")
    with pytest.raises(MltemError, match="unknown network 'resnet'"):
        create_net("resnet")
    with pytest.raises(MltemError, match="network 'unet'"):
        create_net("unet", colour=True)


def test_config_round_trip():
    cfg = TrainConfig.from_dict({"task": "x", "lr": 1})
    assert cfg.lr == 1.0 and TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_fine_tuning_starts_from_a_checkpoint(trained, tmp_path):
    """With lr = 0 a fine-tuning run must keep the starting weights exactly."""
    _, cfg, res = trained
    ft = TrainConfig.from_dict({**cfg.to_dict(), "lr": 0.0, "max_epochs": 1, "init_from": str(res["checkpoint"])})
    out = train(ft, tmp_path / "ft")
    a = load_checkpoint(res["checkpoint"])["state_dict"]
    b = load_checkpoint(out["checkpoint"])["state_dict"]
    for k in a:
        if "running" in k or "num_batches" in k:
            continue  # batch-norm statistics do move in training mode
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    other = TrainConfig.from_dict({**ft.to_dict(), "net": {"base": 8}})
    with pytest.raises(MltemError, match="cannot fine-tune from it: its network"):
        train(other, tmp_path / "bad")


def test_fine_tuning_starts_from_a_shipped_onnx_model(trained, tmp_path):
    """Shipped models are ONNX files with the batch norms folded into the convolutions:
    loading them back gives the same function in eval mode, and a run with lr = 0 keeps
    the folded convolution weights exactly."""
    import onnx
    from onnx import numpy_helper

    from mltem.nets import create_net
    from mltem.training._run import build_from_checkpoint, weights_from_onnx

    _, cfg, res = trained
    card = export_checkpoint(res["checkpoint"], tmp_path / "models")
    x = disks(16, 32, seed=11)[0]
    ckpt = load_checkpoint(res["checkpoint"])
    ref_net = build_from_checkpoint(ckpt)
    net = create_net(**ckpt["net"])
    weights_from_onnx(net, card.path, x)
    net.eval()
    with torch.no_grad():
        xt = torch.from_numpy(np.ascontiguousarray(x))
        assert_allclose(net(xt).numpy(), ref_net(xt).numpy(), atol=1e-4)
    folded = [numpy_helper.to_array(t) for t in onnx.load(str(card.path)).graph.initializer]
    ft = TrainConfig.from_dict({**cfg.to_dict(), "lr": 0.0, "weight_decay": 0.0, "max_epochs": 1, "init_from": str(card.path)})
    out = train(ft, tmp_path / "ft")
    sd = load_checkpoint(out["checkpoint"])["state_dict"]
    convs = [v.numpy() for k, v in sd.items() if k.endswith("weight") and v.ndim == 4]
    assert len(convs) == sum(w.ndim == 4 for w in folded)
    assert all(any(w.shape == c.shape and np.array_equal(w, c) for w in folded) for c in convs)
    other = TrainConfig.from_dict({**ft.to_dict(), "net": {"base": 8}})
    with pytest.raises(MltemError, match="cannot fine-tune from it: its network"):
        train(other, tmp_path / "bad")


def test_per_sample_labels_train_with_cross_entropy(tmp_path):
    from _toy_task import PeakTask

    register_task("toy-peaks", PeakTask)
    cfg = TrainConfig.from_dict({"task": "toy-peaks", "seed": 3, "max_epochs": 6, "batch_size": 16, "lr": 0.01})
    res = train(cfg, tmp_path / "run")
    # left vs right peak at 10x the noise: a working classifier is near perfect
    assert res["metrics"]["val_acc"] >= 0.9


def test_task_options_are_refused_by_tasks_that_do_not_take_them():
    from mltem.training import get_task

    cfg = TrainConfig.from_dict({"task": "toy-disks"})
    with pytest.raises(MltemError, match="--phase, --references does not apply to the 'toy-disks' task"):
        get_task("toy-disks").apply_options(cfg, phase=["Si"], element=None, references="refs")
    get_task("toy-disks").apply_options(cfg, phase=None, element=None)  # nothing given: fine
