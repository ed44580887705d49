"""The Spark adapter keeps Spark's files in its working folder even when the JVM outlives it.

PySpark starts one JVM per Python process and keeps it after a session stops; that JVM holds
the temporary folder and the local root of the session that started it. A later engine in the
same process (a notebook, the tests) must still keep to its own folder: PySpark writes each
frame it sends to Spark to a file under the local root first, and a native library unpacked
later (zstd's, at the first zstd Parquet) must find a folder that exists.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
]
pytest.importorskip("pyspark")
pytest.importorskip("sqlglot")

from pyspark import SparkContext  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402

from crossgroup.engine_spark import SparkEngine  # noqa: E402


def test_engines_one_after_another_keep_to_their_own_working_folders(tmp_path: Path):
    if SparkSession.getActiveSession() is not None:
        pytest.skip("a Spark session is running: an engine would join it")
    folders = [tmp_path / "first", tmp_path / "second"]
    for i, work in enumerate(folders):
        work.mkdir()
        with SparkEngine(work, master="local[1]") as engine:
            engine.register("frame", pl.DataFrame({"k": [1, 2, 3]}))  # through a file
            assert engine.count("frame") == 3
            # the second engine meets a JVM an earlier one started, whatever ran before
            jvm, context = SparkContext._jvm, SparkContext._active_spark_context
            for key in ("java.io.tmpdir", "ZstdTempFolder"):
                assert jvm.java.lang.System.getProperty(key) == str(work / "spark" / "tmp")
            assert Path(context._temp_dir).is_relative_to(work / "spark" / "local")
            if i == 1:  # zstd, maybe for the first time in this JVM
                engine.copy_to_parquet("frame", tmp_path / "frame.parquet")
        assert list(work.iterdir()) == []
    # the second engine wrote nothing where the first one was (its folder not made again)
    assert [list(work.iterdir()) for work in folders] == [[], []]
    assert pl.read_parquet(tmp_path / "frame.parquet").height == 3
