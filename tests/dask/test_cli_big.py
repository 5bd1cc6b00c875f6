"""convcli forward/backward on Zarr stores, TIFFs and folders of images through the CLI: the
stores written equal the in-memory core on the same array, every write is whole or absent, and
a batch reports its bad files at the end without stopping."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcli import conv2d, conv2d_backward, stores
from convcli.cli import app

zarr = pytest.importorskip("zarr", reason="Zarr is not installed (pip install 'convcli[dask]')")
pytest.importorskip("dask.array", reason="Dask is not installed (pip install 'convcli[dask]')")

SOBEL_X = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])


def run(*args, expect=0):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == expect, (result.output, result.exception)
    return result


def error_line(result):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


@pytest.fixture
def image(tmp_path, rng):
    """A 2-D float32 Zarr image of 203×190 in 64×48 chunks, and the same array in memory."""
    x = rng.standard_normal((203, 190)).astype(np.float32)
    store = zarr.create_array(store=str(tmp_path / "big.zarr"), shape=x.shape,
                              chunks=(64, 48), dtype="float32")
    store[:] = x
    return tmp_path / "big.zarr", x


def test_zarr_in_zarr_out_equals_forward(tmp_path, image):
    path, x = image
    out = tmp_path / "y.zarr"
    result = run("forward", path, "sobel-x", "--out", out, "--dtype", "float32", "--json")
    y = zarr.open_array(str(out), mode="r")
    assert y.shape == (1, 1, 203, 190) and y.dtype == np.float32
    expected = conv2d(x[None, None], SOBEL_X[None, None].astype(np.float32), padding=1)
    np.testing.assert_allclose(y[:], expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    facts = json.loads(result.stdout)
    assert facts["chunked"] == {"chunks": [64, 48], "scheduler": "threads",
                                "chunks_written": 16}
    assert facts["output"]["range"] == pytest.approx([float(expected.min()),
                                                      float(expected.max())])
    assert facts["written"] == [str(out)]


def test_options_and_the_processes_scheduler(tmp_path, image):
    path, x = image
    out = tmp_path / "y.npy"
    run("forward", path, "1 2; 3 4", "--out", out, "--stride", "2", "--padding", "1,0,1,0",
        "--chunks", "50,40", "--scheduler", "processes", "--border", "reflect", "-q")
    expected = conv2d(x[None, None].astype(np.float64), np.array([[[[1.0, 2], [3, 4]]]]),
                      stride=2, padding=(1, 0, 1, 0), padding_mode="reflect")
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-12, atol=1e-12)


def test_a_component_of_a_group_and_a_group_with_several(tmp_path, rng):
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    a = rng.random((3, 40, 30))
    group.create_array("a", shape=a.shape, chunks=(3, 16, 16), dtype="f8")[:] = a
    group.create_array("b", shape=(5, 5), dtype="f8")
    out = tmp_path / "y.zarr"
    run("forward", f"{tmp_path / 'g.zarr'}::a", "box3", "--out", out, "-q")
    expected = conv2d(a[None], np.full((3, 1, 3, 3), 1 / 9), padding=1, groups=3)
    np.testing.assert_allclose(zarr.open_array(str(out))[:], expected, rtol=1e-12)
    line = error_line(run("forward", tmp_path / "g.zarr", "box3", "--out", out, expect=2))
    assert "Zarr group with 2 arrays; name one" in line and "g.zarr::a" in line


def test_backward_writes_a_group_equal_to_the_core(tmp_path, image):
    path, x = image
    out = tmp_path / "grads.zarr"
    target = tmp_path / "t.npy"
    t = np.zeros((203, 190))
    np.save(target, t)
    result = run("backward", path, "sobel-x", "--out", out, "--loss", "mse", "--target",
                 target, "--chunks", "70", "--json")
    group = zarr.open_group(str(out), mode="r")
    x64 = x[None, None].astype(np.float64)
    y = conv2d(x64, SOBEL_X[None, None], padding=1)
    dx, dw, db = conv2d_backward(y - t, x64, SOBEL_X[None, None], padding=1)
    np.testing.assert_allclose(group["y"][:], y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(group["grad_input"][:], dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(group["grad_weight"][:], dw, rtol=0, atol=1e-11 * np.abs(dw).max())
    np.testing.assert_allclose(group["grad_bias"][:], db, rtol=1e-11)
    assert group.attrs["padding"] == [1, 1, 1, 1] and group.attrs["stride"] == [1, 1]
    facts = json.loads(result.stdout)
    assert facts["L"] == pytest.approx(0.5 * float((y ** 2).sum()), rel=1e-12)
    assert facts["norms"]["grad_input"] == pytest.approx(float(np.linalg.norm(dx)), rel=1e-12)


@pytest.mark.parametrize("options", [
    ["--padding", "same"],
    ["--stride", "2", "--padding", "3,0,2,5", "--flip"],
    ["--border", "reflect", "--dilation", "2", "--padding", "2,1,4,1"],
    ["--padding", "30", "--stride", "3"],           # strips whose windows are all padding
])
def test_strips_of_columns_give_the_same_answers(tmp_path, image, monkeypatch, options):
    """With a strip two chunks wide (four strips here), forward and every gradient still
    equal the core's."""
    import convcli.chunked

    monkeypatch.setattr(convcli.chunked, "STRIP_BYTES", 1)
    path, x = image
    t = np.random.default_rng(5).standard_normal((300, 300))
    np.save(tmp_path / "x.npy", x.astype(np.float64))
    kernel = "1 2 0; -1 3 1"
    run("forward", path, kernel, "--out", tmp_path / "y.zarr", "--chunks", "64,40", "-q",
        *options)
    run("forward", tmp_path / "x.npy", kernel, "--out", tmp_path / "y.npy", "-q", *options)
    want_y = np.load(tmp_path / "y.npy")
    np.testing.assert_allclose(zarr.open_array(str(tmp_path / "y.zarr"))[:], want_y,
                               rtol=1e-12, atol=1e-12)
    np.save(tmp_path / "t.npy", t[: want_y.shape[2], : want_y.shape[3]])
    loss = ["--loss", "mse", "--target", tmp_path / "t.npy"]
    run("backward", path, kernel, "--out", tmp_path / "g.zarr", "--chunks", "64,40", "-q",
        *loss, *options)
    run("backward", tmp_path / "x.npy", kernel, "--out", tmp_path / "g.npz", "-q", *loss,
        *options)
    got, want = zarr.open_group(str(tmp_path / "g.zarr")), np.load(tmp_path / "g.npz")
    for name in ("y", "grad_input", "grad_weight", "grad_bias"):
        scale = max(1.0, float(np.abs(want[name]).max()))
        np.testing.assert_allclose(got[name][:], want[name], rtol=0, atol=1e-11 * scale,
                                   err_msg=name)


def test_a_tiled_tiff(tmp_path, rng):
    tifffile = pytest.importorskip("tifffile", reason="tifffile is not installed")
    pixels = rng.integers(0, 65536, size=(150, 130, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "slide.tif", pixels, tile=(64, 64))
    out = tmp_path / "y.zarr"
    run("forward", tmp_path / "slide.tif", "sobel-x", "--out", out, "-q")
    x = pixels.transpose(2, 0, 1)[None] / 65535.0
    expected = conv2d(x, np.tile(SOBEL_X, (3, 1, 1, 1)), padding=1, groups=3)
    np.testing.assert_allclose(zarr.open_array(str(out))[:], expected, rtol=1e-12,
                               atol=1e-12)


def test_a_failed_run_leaves_the_old_store_whole(tmp_path, image, monkeypatch):
    path, _ = image
    out = tmp_path / "y.zarr"
    run("forward", path, "box3", "--out", out, "-q")
    before = zarr.open_array(str(out))[:]
    calls = {"n": 0}
    original = stores.Target.write

    def breaks_on_the_fifth(self, name, region, block):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full")
        original(self, name, region, block)

    monkeypatch.setattr(stores.Target, "write", breaks_on_the_fifth)
    run("forward", path, "sobel-x", "--out", out, "--scheduler", "synchronous", expect=1)
    np.testing.assert_array_equal(zarr.open_array(str(out))[:], before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.zarr", "y.zarr"]


def test_a_symlinked_store_has_its_target_replaced(tmp_path, image):
    path, x = image
    real = tmp_path / "real.zarr"
    run("forward", path, "box3", "--out", real, "-q")
    link = tmp_path / "link.zarr"
    link.symlink_to(real)
    run("forward", path, "sobel-x", "--out", link, "-q")
    assert link.is_symlink() and os.readlink(link) == str(real)
    expected = conv2d(x[None, None].astype(np.float64), SOBEL_X[None, None], padding=1)
    np.testing.assert_allclose(zarr.open_array(str(real))[:], expected, rtol=1e-12)


@pytest.mark.parametrize(("args", "message"), [
    (["--png", "y.png"], "--png does not go with a chunked run"),
    (["--chunks", "2", "--dilation", "3"], "chunks of 2 rows are smaller than the kernel's halo of 6 rows"),
    (["--chunks", "0"], "--chunks must be"),
    (["--scheduler", "gpu"], "--scheduler must be threads, processes, synchronous"),
    (["--transpose"], "--transpose does not go with a chunked run"),
    (["--out", "y.npz"], "a chunked forward writes NAME.zarr or NAME.npy"),
])
def test_mistakes_are_one_line(tmp_path, image, monkeypatch, args, message):
    path, _ = image
    monkeypatch.chdir(tmp_path)
    result = run("forward", path, "box3", "--out", "y.zarr", *args, expect=2)
    assert message in error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.zarr"]


def test_an_input_store_is_never_overwritten(tmp_path, image):
    path, _ = image
    assert "is also an input" in error_line(run("forward", path, "box3", "--out", path,
                                                expect=2))
    folder = tmp_path / "plain.zarr"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert "not a Zarr store" in error_line(run("forward", path, "box3", "--out", folder,
                                                expect=2))
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.fixture
def photos(tmp_path, rng):
    folder = tmp_path / "photos"
    folder.mkdir()
    arrays = {}
    for k in range(5):
        pixels = rng.integers(0, 256, size=(20 + k, 30, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"p{k}.png")
        arrays[f"p{k}"] = pixels
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    return folder, arrays


@pytest.mark.parametrize("scheduler", ["threads", "processes", "synchronous"])
def test_a_glob_with_a_broken_file(tmp_path, photos, scheduler):
    folder, arrays = photos
    out = tmp_path / "out"
    out.mkdir()
    result = run("forward", f"{folder}/*.png", "sobel-x", "--out-dir", out, "--scheduler",
                 scheduler, "--json", expect=1)
    facts = json.loads(result.stdout)
    assert facts["images"] == {"total": 6, "written": 5, "failed": 1, "scheduler": scheduler}
    assert [f["image"] for f in facts["failed"]] == [str(folder / "broken.png")]
    assert "not an image Pillow can read" in facts["failed"][0]["error"]
    for name, pixels in arrays.items():
        x = pixels.transpose(2, 0, 1)[None] / 255.0
        expected = conv2d(x, np.tile(SOBEL_X, (3, 1, 1, 1)), padding=1, groups=3)
        np.testing.assert_allclose(np.load(out / f"{name}.forward.npy"), expected, rtol=1e-12)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.forward.npy" for n in arrays)


def test_several_images_named_one_by_one(tmp_path, photos):
    folder, _ = photos
    result = run("forward", folder / "p0.png", folder / "p1.png", "box3")
    assert "2 read, 2 written, 0 failed" in result.output
    assert (folder / "p0.forward.npy").exists() and (folder / "p1.forward.npy").exists()


def test_batch_mistakes(tmp_path, photos):
    folder, _ = photos
    assert "no file matches" in error_line(run("forward", f"{folder}/*.jpg", "box3", expect=2))
    assert "--out names one output" in error_line(run(
        "forward", f"{folder}/p*.png", "box3", "--out", "y.npy", expect=2))
    assert "is not a folder" in error_line(run(
        "forward", f"{folder}/p*.png", "box3", "--out-dir", tmp_path / "none", expect=2))
    other = tmp_path / "other"
    other.mkdir()
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(other / "p0.png")
    line = error_line(run("forward", folder / "p0.png", other / "p0.png", "box3", "--out-dir",
                          tmp_path, expect=2))
    assert "would both write" in line


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="distributed is not installed")
    with distributed.LocalCluster(processes=False, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None, protocol="tcp://") as local:
        yield local.scheduler_address


def test_a_distributed_scheduler_by_its_address(tmp_path, image, photos, cluster):
    path, x = image
    out = tmp_path / "y.zarr"
    result = run("forward", path, "sobel-x", "--out", out, "--scheduler", cluster, "--json")
    assert json.loads(result.stdout)["chunked"]["scheduler"] == cluster
    expected = conv2d(x[None, None].astype(np.float64), SOBEL_X[None, None], padding=1)
    np.testing.assert_allclose(zarr.open_array(str(out))[:], expected, rtol=1e-12)
    folder, arrays = photos
    result = run("forward", f"{folder}/p*.png", "box3", "--out-dir", tmp_path, "--scheduler",
                 cluster, "--json")
    assert json.loads(result.stdout)["images"]["written"] == len(arrays)


def test_an_address_nobody_answers_is_an_input_error(image):
    path, _ = image
    line = error_line(run("forward", path, "box3", "--scheduler", "tcp://127.0.0.1:9",
                          expect=2))
    assert "cannot reach a Dask scheduler at tcp://127.0.0.1:9" in line


def test_stores_path_forms():
    assert stores.is_store("a.zarr") and stores.is_store("a.zarr/") and stores.is_store("s::c")
    assert not stores.is_store("a.npy")
    assert stores.split("s.zarr::x/y") == (Path("s.zarr"), "x/y")


def test_brackets_in_an_error_survive(tmp_path):
    """Rich markup must not eat [dask] or [1] out of a message."""
    line = error_line(run("forward", tmp_path / "scan[1].zarr", "box3", expect=2))
    assert "scan[1].zarr" in line


def test_progress_counts_every_chunk_written(tmp_path, image, monkeypatch):
    import convcli.chunked
    from convcli.chunked import run_backward_chunked, run_forward_chunked
    from convcli.problem import ProblemSpec
    from convcli.schedulers import connect

    monkeypatch.setattr(convcli.chunked, "STRIP_BYTES", 1)          # several strips
    path, _ = image
    calls = []
    spec = ProblemSpec(path, "box3")
    result = run_forward_chunked(spec, out=tmp_path / "y.zarr", chunks=None,
                                 scheduler=connect("threads"), progress=lambda *a: calls.append(a))
    assert result.y_chunks == 16 and calls[-1] == (16, 16)
    assert [done for done, _ in calls] == list(range(1, 17))
    calls.clear()
    run_backward_chunked(spec, out=tmp_path / "g.zarr", scheduler=connect("synchronous"),
                         progress=lambda *a: calls.append(a))
    assert calls[-1] == (32, 32) and len(calls) == 32             # y's chunks, then dL/dx's


def test_non_finite_data_is_counted_and_makes_the_loss_nan(tmp_path):
    x = np.ones((40, 30))
    x[5, 5], x[20, 20] = np.nan, np.inf
    store = zarr.create_array(store=str(tmp_path / "x.zarr"), shape=x.shape, chunks=(16, 16),
                              dtype="f8")
    store[:] = x
    facts = json.loads(run("forward", tmp_path / "x.zarr", "box3", "--out",
                           tmp_path / "y.zarr", "--json").stdout)
    assert facts["nonfinite"] == {"y": {"nan": 9, "inf": 9}}        # each spreads to 3×3
    facts = json.loads(run("backward", tmp_path / "x.zarr", "box3", "--out",
                           tmp_path / "g.zarr", "--json").stdout)
    assert facts["L"] == "nan" and facts["nonfinite"]["y"] == {"nan": 9, "inf": 9}


def test_a_stream_is_not_a_chunked_output(image):
    path, _ = image
    line = error_line(run("forward", path, "box3", "--out", "/dev/null", expect=2))
    assert "not to a stream like /dev/null" in line


def test_outputs_and_batch_jobs_are_absolute_for_workers_elsewhere(tmp_path, monkeypatch):
    """A cluster's workers run in other folders: every path sent to them is absolute."""
    from convcli.batch import run_batch
    from convcli.problem import ProblemSpec

    monkeypatch.chdir(tmp_path)
    target = stores.target(Path("rel.zarr"), "zarr")
    assert target.final.is_absolute() and target.temporary.is_absolute()
    Image.fromarray(np.zeros((6, 6), np.uint8)).save("a.png")
    import convcli.batch

    seen = []

    def one(job, options):
        seen.append(job)
        return convcli.batch.Done(job[0].image, job[1], 0.0)

    monkeypatch.setattr(convcli.batch, "_one", one)
    run_batch(ProblemSpec(Path("a.png"), "box3"), [Path("a.png")], out_dir=Path("."),
              scheduler="synchronous")
    assert seen[0][0].image.is_absolute() and seen[0][1].is_absolute()


@pytest.mark.parametrize("mode", ["reflect", "replicate", "symmetric", "circular"])
def test_chunked_backward_with_a_border_mode(tmp_path, image, mode):
    path, x = image
    run("backward", path, "sobel-x", "--out", tmp_path / "g.zarr", "--chunks", 41,
        "--border", mode, "-q")
    x64 = x[None, None].astype(np.float64)
    dx, dw, _db = conv2d_backward(np.ones((1, 1, 203, 190)), x64, SOBEL_X[None, None],
                                 padding=1, padding_mode=mode)
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="r")
    np.testing.assert_allclose(group["grad_input"][:], dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(group["grad_weight"][:], dw, rtol=0, atol=1e-9 * np.abs(dw).max())


def test_chunked_backward_keeps_float32(tmp_path, image):
    path, _ = image
    run("backward", path, "sobel-x", "--out", tmp_path / "g.zarr", "--chunks", 41, "--dtype",
        "float32", "--flip", "--bias", "0.5", "-q")
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="r")
    assert {group[name].dtype for name in ("y", "grad_input", "grad_weight", "grad_bias",
                                            "weight", "bias")} == {np.dtype(np.float32)}


def test_a_nested_array_in_a_group_is_listed(tmp_path):
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_group("sub").create_array("img", shape=(8, 8), dtype="f8")
    group.create_array("other", shape=(8, 8), dtype="f8")
    line = error_line(run("forward", tmp_path / "g.zarr", "box3", "--out", tmp_path / "y.zarr",
                          expect=2))
    assert "2 arrays" in line and "g.zarr::sub/img" in line and "g.zarr::other" in line
    result = run("forward", f"{tmp_path / 'g.zarr'}::sub/img", "box3", "--out",
                 tmp_path / "y.zarr")
    assert "g.zarr::sub/img" in result.output


def test_nan_data_gives_no_numpy_warnings(tmp_path, recwarn):
    x = np.ones((30, 30))
    x[3, 3] = np.nan
    x[20, 20] = np.inf
    np.save(tmp_path / "x.npy", x)
    run("forward", tmp_path / "x.npy", "sobel-x", "--out", tmp_path / "y.zarr", "--chunks", 8,
        "--scheduler", "synchronous", "-q")
    run("backward", tmp_path / "x.npy", "sobel-x", "--out", tmp_path / "g.zarr", "--chunks", 8,
        "--scheduler", "synchronous", "-q")
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
