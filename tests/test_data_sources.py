"""Data sources on real files: the shared Braatz copy, generated Rieth/tabular files, bad inputs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from artifacts import DatasetPaths
from artifacts.sources import SourceError, parse_source
from workers.data import braatz, tabular
from workers.data.dataset import TEP_VARIABLES, open_prepared
from workers.data.errors import DataError
from workers.data.prepare import prepare_dataset
from workers.data.rieth_fixture import write_rieth_table
from workers.data.synthetic import build_plant, simulate_test_run
from workers.data.writer import Chunk, ChunkedSource, write_prepared, write_prepared_chunks

REPO = Path(__file__).resolve().parent.parent
SHARED_BRAATZ = REPO.parent / "shared" / "data" / "tep-braatz"


@pytest.fixture
def shared_braatz() -> Path:
    if not (SHARED_BRAATZ / "d00.dat").is_file():
        pytest.skip(f"the Braatz files are not at {SHARED_BRAATZ} (orchestrate data download braatz --dest ...)")
    return SHARED_BRAATZ


@pytest.fixture
def fake_braatz(tmp_path) -> Path:
    """Braatz-layout files (d00.dat transposed, d00/d01/d02_te.dat) from the synthetic plant."""
    folder = tmp_path / "braatz"
    folder.mkdir()
    plant, rng = build_plant(), np.random.default_rng(0)
    np.savetxt(folder / "d00.dat", simulate_test_run(rng, plant, 0, 500).T, fmt="%.7e")
    for fault in (0, 1, 2):
        np.savetxt(folder / f"d{fault:02d}_te.dat", simulate_test_run(rng, plant, fault, 960), fmt="%.7e")
    return folder


def prepare(kind: str, location, options: dict, out: Path) -> dict:
    return prepare_dataset(kind, str(location), options, DatasetPaths(out), fingerprint="test")


def prepared_arrays(out: Path) -> dict[str, np.ndarray]:
    data = open_prepared(DatasetPaths(out))
    return {name: np.asarray(getattr(data, name)) for name in DatasetPaths.ARRAYS}


# --- Braatz, on the real files ---

def test_braatz_real_files_shapes_and_onset_labels(shared_braatz):
    data = braatz.load(str(shared_braatz), {})
    assert data.train.shape == (400, 52) and data.valid.shape == (100, 52)
    assert data.test.shape == (22 * 960, 52) and data.variables == TEP_VARIABLES
    assert set(np.unique(data.train_groups)).isdisjoint(np.unique(data.valid_groups))
    for fault in range(22):
        rows = data.test_meta[:, 0] == fault
        labels, samples = data.test_labels[rows], data.test_meta[rows, 2]
        assert rows.sum() == 960 and np.array_equal(samples, np.arange(960))
        assert (labels[:160] == 0).all() and (labels[160:] == fault).all()
    assert data.onset == 160 and data.sampling_minutes == 3.0


def test_braatz_d00_is_transposed_on_disk_and_turned_on_load(shared_braatz):
    raw = np.loadtxt(shared_braatz / "d00.dat")
    assert raw.shape == (52, 500)
    data = braatz.load(str(shared_braatz), {"faults": [1]})
    np.testing.assert_array_equal(data.train[0], raw[:, 0])
    np.testing.assert_array_equal(data.valid[-1], raw[:, -1])


def test_braatz_prepared_dataset_selects_faults(shared_braatz, tmp_path):
    meta = prepare("braatz", shared_braatz, {"faults": [1, 2, 6]}, tmp_path / "ds")
    assert meta["faults"] == [0, 1, 2, 6] and meta["shapes"]["test"] == [4 * 960, 52]
    arrays = prepared_arrays(tmp_path / "ds")
    assert abs(arrays["train"].mean()) < 1e-5 and arrays["test"].dtype == np.float32


# --- Braatz, bad inputs (generated files) ---

def test_braatz_missing_folder_says_how_to_download(tmp_path):
    with pytest.raises(DataError, match="does not exist.*orchestrate data download braatz"):
        braatz.load(str(tmp_path / "nowhere"), {})


def test_braatz_missing_files_are_named(fake_braatz):
    with pytest.raises(DataError, match=r"lacks 19 file\(s\): d03_te.dat.*orchestrate data download braatz"):
        braatz.load(str(fake_braatz), {})
    (fake_braatz / "d02_te.dat").unlink()
    with pytest.raises(DataError, match=r"lacks 1 file\(s\): d02_te.dat"):
        braatz.load(str(fake_braatz), {"faults": [1, 2]})


def test_braatz_file_cut_mid_line_is_reported_as_truncated(fake_braatz):
    path = fake_braatz / "d01_te.dat"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError, match=r"d01_te.dat, line 960 has \d+ values but line 1 has 52.*truncated"):
        braatz.load(str(fake_braatz), {"faults": [1, 2]})


def test_braatz_file_missing_rows_is_reported_as_truncated(fake_braatz):
    path = fake_braatz / "d02_te.dat"
    path.write_text("\n".join(path.read_text().splitlines()[:500]) + "\n")
    with pytest.raises(DataError, match="d02_te.dat has 500 rows, expected 960: the file is truncated"):
        braatz.load(str(fake_braatz), {"faults": [1, 2]})


@pytest.mark.parametrize("cell", ["abc", "nan", "inf"])
def test_braatz_bad_cell_names_file_line_column_variable(fake_braatz, cell):
    path = fake_braatz / "d01_te.dat"
    lines = path.read_text().splitlines()
    fields = lines[9].split()
    fields[4] = cell
    lines[9] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"d01_te.dat, line 10, column 5 \(XMEAS\(5\)\): '{cell}' is not a finite"):
        braatz.load(str(fake_braatz), {"faults": [1, 2]})


def test_braatz_bad_cell_in_transposed_file_names_the_variable(fake_braatz):
    path = fake_braatz / "d00.dat"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(lines[2].split()[7], "x", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"d00.dat, line 3, column 8 \(XMEAS\(3\)\)"):
        braatz.load(str(fake_braatz), {"faults": [1, 2]})


def test_braatz_wrong_column_count(fake_braatz):
    path = fake_braatz / "d02_te.dat"
    np.savetxt(path, np.ones((960, 51)))
    with pytest.raises(DataError, match="d02_te.dat has 51 columns; Braatz files have 52"):
        braatz.load(str(fake_braatz), {"faults": [1, 2]})


@pytest.mark.parametrize("faults, message", [([], "selects no faulty class"), ([0], "selects no faulty class"),
                                             ([99], r"fault\(s\) \[99\] are not in"), ("x", "give fault numbers")])
def test_bad_fault_selection(fake_braatz, faults, message):
    with pytest.raises(DataError, match=message):
        braatz.load(str(fake_braatz), {"faults": faults})


def test_unknown_option_lists_valid_ones(fake_braatz):
    with pytest.raises(DataError, match=r"unknown option\(s\) fault for .*Valid options: faults"):
        braatz.load(str(fake_braatz), {"fault": [1]})


def test_unknown_source_string_lists_valid_kinds():
    with pytest.raises(SourceError, match="unknown data source 'tep:x'.*braatz:PATH.*rieth:PATH.*csv:PATH"):
        parse_source("tep:x")


@pytest.mark.parametrize("options, message", [
    ({"sise": "tiny"}, "unknown option(s) sise for data source synthetic. Valid options: size (tiny, small or full"),
    ({"size": "huge"}, "unknown synthetic size 'huge'; choose one of: tiny, small, full"),
])
def test_synthetic_bad_options_name_the_choices(options, message):
    from workers.data.synthetic import load as load_synthetic

    with pytest.raises(DataError) as error:
        load_synthetic(None, options)
    assert message in str(error.value)


# --- Rieth ---

def write_rieth_dir(folder: Path, suffix: str, test_lengths: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_rieth_table(folder / f"TEP_FaultFree_Training{suffix}", [0], 6, 500, seed=1, lengths={2: 350})
    write_rieth_table(folder / f"TEP_FaultFree_Testing{suffix}", [0], 1, 960, seed=2)
    write_rieth_table(folder / f"TEP_Faulty_Testing{suffix}", [1, 2, 4], 3, 960, seed=3, lengths=test_lengths)
    return folder


def test_rieth_csv_parquet_rdata_give_identical_prepared_arrays(tmp_path):
    suffixes = [".csv", ".parquet"]
    try:
        import pyreadr  # noqa: F401  optional: .RData support
        suffixes.append(".RData")
    except ImportError:
        pass
    results = []
    for suffix in suffixes:
        folder = write_rieth_dir(tmp_path / suffix.strip("."), suffix)
        meta = prepare("rieth", folder, {"chunk_rows": 1000}, tmp_path / f"out{suffix}")
        results.append((meta, prepared_arrays(tmp_path / f"out{suffix}")))
    first_meta, first = results[0]
    assert first_meta["shapes"] == {"train": [2350, 52], "valid": [500, 52], "test": [960 * 10, 52]}
    assert first_meta["runs"] == {"train": 5, "valid": 1, "test": 10} and first_meta["faults"] == [0, 1, 2, 4]
    for meta, arrays in results[1:]:
        assert meta["shapes"] == first_meta["shapes"]
        for name in DatasetPaths.ARRAYS:
            np.testing.assert_allclose(arrays[name], first[name], rtol=0, atol=1e-6, err_msg=name)


def test_rieth_labels_relabel_pre_onset_rows_and_keep_short_runs(tmp_path):
    folder = write_rieth_dir(tmp_path / "r", ".parquet", test_lengths={2: 300})
    meta = prepare("rieth", folder, {"faults": [2, 4], "runs": 2}, tmp_path / "out")
    arrays = prepared_arrays(tmp_path / "out")
    fault, run, sample = arrays["test_meta"].T
    assert sorted(np.unique(fault)) == [0, 2, 4] and len(np.unique(run)) == 1 + 2 * 2
    assert (arrays["test_labels"][sample < 160] == 0).all()
    assert (arrays["test_labels"][sample >= 160] == fault[sample >= 160]).all()
    assert meta["details"]["short_test_runs"]["faulty_testing"] == 2   # run 2 of faults 2 and 4
    assert meta["shapes"]["test"][0] == 960 + 2 * (960 + 300)


def test_rieth_chunked_writer_matches_in_memory_writer(tmp_path):
    from workers.data.synthetic import load as load_synthetic

    data = load_synthetic(None, {"size": "tiny"})
    write_prepared(load_synthetic(None, {"size": "tiny"}), DatasetPaths(tmp_path / "whole"), "fp")

    def read_chunks(split):
        X, groups = getattr(data, split), getattr(data, f"{split}_groups")
        for start in range(0, len(X), 777):
            end = start + 777
            yield Chunk(X[start:end], groups[start:end], *((data.test_labels[start:end], data.test_meta[start:end])
                                                          if split == "test" else ()))

    source = ChunkedSource(read_chunks=read_chunks, variables=list(data.variables), onset=data.onset,
                           sampling_minutes=data.sampling_minutes, source=data.source)
    meta = write_prepared_chunks(source, DatasetPaths(tmp_path / "chunks"), "fp")
    whole, chunked = prepared_arrays(tmp_path / "whole"), prepared_arrays(tmp_path / "chunks")
    for name in DatasetPaths.ARRAYS:
        np.testing.assert_allclose(chunked[name], whole[name], atol=2e-5, err_msg=name)
    assert meta["shapes"]["test"] == list(data.test.shape)


def prepared_files() -> list[str]:
    return sorted(["meta.json", *(f"{name}.npy" for name in DatasetPaths.ARRAYS)])


def test_chunked_writer_reads_each_split_once_and_deletes_its_spool(tmp_path):
    from workers.data.synthetic import describe

    _, source = describe({"size": "tiny"}, seed=0)
    generate, passes = source.read_chunks, []

    def read_chunks(split):
        passes.append(split)
        return generate(split)

    source.read_chunks = read_chunks
    write_prepared_chunks(source, DatasetPaths(tmp_path / "out"), "fp")
    assert passes == ["train", "valid", "test"]   # train is replayed from the spool, not generated again
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == prepared_files()


def test_rieth_parses_each_file_once(tmp_path, monkeypatch):
    from workers.data import rieth

    folder = write_rieth_dir(tmp_path / "r", ".csv")
    read, parsed = rieth.iter_table_chunks, []

    def iter_table_chunks(path, *args):
        parsed.append(Path(path).name)
        return read(path, *args)

    monkeypatch.setattr(rieth, "iter_table_chunks", iter_table_chunks)
    prepare("rieth", folder, {"chunk_rows": 1000}, tmp_path / "out")
    assert sorted(parsed) == sorted(path.name for path in folder.iterdir())
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == prepared_files()


def test_rieth_missing_required_file_names_it_and_the_doi(tmp_path):
    folder = write_rieth_dir(tmp_path / "r", ".csv")
    (folder / "TEP_Faulty_Testing.csv").unlink()
    with pytest.raises(DataError, match="lacks TEP_Faulty_Testing .*doi:10.7910/DVN/6C3JR1"):
        prepare("rieth", folder, {}, tmp_path / "out")


def test_rieth_train_and_test_variables_that_differ(tmp_path):
    import pandas as pd

    folder = write_rieth_dir(tmp_path / "r", ".csv")
    path = folder / "TEP_Faulty_Testing.csv"
    pd.read_csv(path).drop(columns=["xmv_11"]).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"TEP_Faulty_Testing.csv lacks column\(s\) xmv_11"):
        prepare("rieth", folder, {}, tmp_path / "out")
    assert not list((tmp_path / "out").iterdir())   # nothing half-written, and no spool, is left behind


def test_rieth_text_and_nan_cells_name_file_row_column(tmp_path):
    import pandas as pd

    folder = write_rieth_dir(tmp_path / "r", ".csv")
    path = folder / "TEP_Faulty_Testing.csv"
    frame = pd.read_csv(path)
    frame["xmeas_7"] = frame["xmeas_7"].astype(object)
    frame.loc[1500, "xmeas_7"] = "12,5"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"TEP_Faulty_Testing.csv, row 1501 \(line 1502\), column 'xmeas_7' holds '12,5'"):
        prepare("rieth", folder, {"chunk_rows": 1000}, tmp_path / "out")
    frame.loc[1500, "xmeas_7"] = None
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"TEP_Faulty_Testing.csv, row 1501 \(line 1502\), column 'xmeas_7': nan"):
        prepare("rieth", folder, {"chunk_rows": 1000}, tmp_path / "out")


def test_rieth_row_with_extra_column_is_refused(tmp_path):
    folder = write_rieth_dir(tmp_path / "r", ".csv")
    path = folder / "TEP_FaultFree_Training.csv"
    lines = path.read_text().splitlines()
    lines[40] += ",1.0"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="cannot read .*TEP_FaultFree_Training.csv.*different number of columns"):
        prepare("rieth", folder, {}, tmp_path / "out")


def test_rieth_non_contiguous_run_is_refused(tmp_path):
    import pandas as pd

    folder = write_rieth_dir(tmp_path / "r", ".parquet")
    path = folder / "TEP_Faulty_Testing.parquet"
    frame = pd.read_parquet(path)
    pd.concat([frame.iloc[:100], frame.iloc[2000:], frame.iloc[100:2000]]).to_parquet(path)
    with pytest.raises(DataError, match="faultNumber 1, simulationRun 1 are not contiguous"):
        prepare("rieth", folder, {}, tmp_path / "out")


def test_rieth_requested_fault_absent(tmp_path):
    folder = write_rieth_dir(tmp_path / "r", ".parquet")
    with pytest.raises(DataError, match=r"fault\(s\) \[3\] are not in the Rieth testing files"):
        prepare("rieth", folder, {"faults": [1, 3]}, tmp_path / "out")


# --- your own tables ---

def write_plant_table(path: Path, constant: bool = False):
    """Six runs (4 in control, faults 3 and 5 from sample 40) in shuffled row order."""
    import pandas as pd

    rng = np.random.default_rng(0)
    frames = []
    for index, fault in enumerate([0, 0, 0, 0, 3, 5]):
        samples = np.arange(100)
        frames.append(pd.DataFrame({
            "batch": f"B{index}", "fault": np.where(samples >= 40, fault, 0), "t": samples,
            "temp": rng.normal(70, 1, 100) + (samples >= 40) * fault, "flow": rng.normal(3, 0.1, 100),
            "operator": "ann", "valve": 1.0 if constant else rng.normal(0, 1, 100)}))
    frame = pd.concat(frames).sample(frac=1, random_state=0)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        np.savez(path, **{c: np.asarray(frame[c].tolist())
                          for c in frame.columns})
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
def test_tabular_sources_split_runs_and_label_rows(tmp_path, suffix):
    path = write_plant_table(tmp_path / f"plant{suffix}")
    options = {"run_column": "batch", "sample_column": "t", "sampling_minutes": 0.5}
    data = tabular.load(str(path), options)
    assert data.variables == ["temp", "flow", "valve"]   # 'operator' is text, left out
    assert (len(data.train), len(data.valid), len(data.test)) == (200, 100, 300)
    assert np.array_equal(np.unique(data.test_meta[:, 0]), [0, 3, 5]) and data.onset == 40
    assert (data.test_labels[data.test_meta[:, 2] < 40] == 0).all()
    assert set(data.test_labels[data.test_meta[:, 2] >= 40]) == {0, 3, 5}
    assert all(np.all(np.diff(data.test_meta[data.test_groups == g, 2]) == 1) for g in np.unique(data.test_groups))


def test_tabular_run_level_fault_column_with_onset(tmp_path):
    import pandas as pd

    path = write_plant_table(tmp_path / "plant.csv")
    frame = pd.read_csv(path)
    frame["fault"] = frame.groupby("batch")["fault"].transform("max")   # fault names the whole run
    frame.to_csv(path, index=False)
    data = tabular.load(str(path), {"run_column": "batch", "sample_column": "t", "onset": 40, "faults": [5]})
    assert np.array_equal(np.unique(data.test_meta[:, 0]), [0, 5])
    assert (data.test_labels[data.test_meta[:, 2] < 40] == 0).all()


def test_tabular_constant_training_column_dropped_with_warning(tmp_path):
    path = write_plant_table(tmp_path / "plant.parquet", constant=True)
    with pytest.warns(UserWarning, match="constant in the training data: valve"):
        meta = prepare("parquet", path, {"run_column": "batch", "sample_column": "t"}, tmp_path / "out")
    assert meta["dropped_constant_variables"] == ["valve"] and meta["variables"] == ["temp", "flow"]


def test_tabular_text_cell_in_feature_names_row_and_column(tmp_path):
    import pandas as pd

    path = write_plant_table(tmp_path / "plant.csv")
    frame = pd.read_csv(path)
    frame["flow"] = frame["flow"].astype(object)
    frame.loc[17, "flow"] = "n/a?"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"plant.csv, row 18 \(line 19\), column 'flow' holds 'n/a\?'"):
        tabular.load(str(path), {"run_column": "batch"})


def test_tabular_without_in_control_run(tmp_path):
    import pandas as pd

    path = tmp_path / "faulty.csv"
    pd.DataFrame({"run": [1, 1, 2, 2], "fault": [1, 1, 2, 2], "x": [1.0, 2, 3, 4]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="no run is in control throughout"):
        tabular.load(str(path), {})


# --- the inspector, as the parent runs it ---

def test_inspect_reports_and_exit_codes(fake_braatz):
    command = [sys.executable, "-m", "workers.data.inspect", f"braatz:{fake_braatz}", "--option", "faults=[1,2]"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "train" in done.stdout and "XMV(11)" in done.stdout and "problems:" in done.stdout
    assert "    2      1        960          800  160" in done.stdout
    (fake_braatz / "d01_te.dat").unlink()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "d01_te.dat" in done.stderr
    done = subprocess.run([sys.executable, "-m", "workers.data.inspect", "nope"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "Valid sources" in done.stderr
