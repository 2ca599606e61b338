"""The scan as an Apache Beam pipeline, for archives: ``python -m tfseti.scan ... --runner DirectRunner``.

Same windows, same scorer, same cadence folders as the local runner (``tfseti.scan.run``); Beam
only distributes the work::

    Create(read groups of every cadence not yet complete)      one element per (cadence, group)
      | ParDo(ReadWindows)        the group read, and the band search over its own channels
                                  (the classical columns): one element per window,
                                  ((cadence, batch), (window, native, classical columns))
      | GroupByKey                batches: windows [k B, (k + 1) B) of a cadence, as the local
                                  runner makes them (tfseti.scan.stream.read_groups), so both
                                  score identical batches and write identical tables
      | ParDo(ScoreWindows)       the models: (cadence, window row)
    Create(the six files' coarse channels of every cadence not yet complete)
      | ParDo(SearchFile)         one element per (cadence, file, coarse channel): that coarse
                                  channel of the file searched alone (tfseti.scan.filehits):
                                  (cadence, (file, coarse channel, hits))
    {rows, files} | CoGroupByKey                   every window row and file's hits of a cadence
      | ParDo(WriteCadence)       the cadence's folder (.dat, events), written atomically
                                  (tfseti.scan.outputs)

then, on the launching machine, the cadences' hits and events are merged into ``OUT/hits.csv`` and
``OUT/events.csv`` and the page is written. Resumable per cadence: a rerun skips the cadences whose folders are complete, as the
local runner does. The files and ``OUT`` must be reachable by the workers under the same paths
(a shared file system on Flink/Spark clusters; for Dataflow, stage the cadences on a disk the
workers mount, or copy them first: reads go through numpy/h5py, not Beam's file systems).

Runner flags (anything ``python -m tfseti.scan`` does not know is passed to Beam)::

    --runner DirectRunner --direct_num_workers 2 --direct_running_mode multi_processing
    --runner DataflowRunner --project P --region R --temp_location gs://B/tmp \\
        --requirements_file requirements.txt --setup_file ./setup.py
    --runner FlinkRunner --flink_master host:8081 --environment_type LOOPBACK
    --runner SparkRunner --spark_master_url spark://host:7077
"""

from __future__ import annotations

import contextlib
import tempfile

import numpy as np

from tfseti.scan import outputs
from tfseti.scan.filehits import coarse_ranges
from tfseti.scan.run import ScanJob, close_opened, finish, load_models, opened, plan_cadence, prepare
from tfseti.scan.stream import read_group, read_groups


def _dofns():
    import apache_beam as beam

    class ReadWindows(beam.DoFn):
        """(cadence index, read group) -> ((cadence, batch), (window, native, classical)) per window."""

        def __init__(self, job: ScanJob, width: int):
            self.job, self.width = job, width

        def setup(self):
            from tfseti.scan.scoring import WindowScorer

            self.cache = {}
            self.scorer = WindowScorer([], self.job.settings, None)   # the band search only

        def process(self, element):
            from tfseti.dedoppler.band_search import halo

            index, group = element
            cadence, plan, cfg, _ = opened(self.job, self.width, self.cache, index)
            data = read_group(cadence, plan, tuple(group), halo(cfg, cadence.rows),
                              windows=bool(self.job.models))
            classical = self.scorer.classical(plan, self.scorer.band(cfg, plan, data), data.indices)
            batch = self.job.settings.batch_size
            natives = [None] * len(data.indices) if data.native is None else data.native
            for w, x, c in zip(data.indices, natives, classical):
                yield (index, int(w) // batch), (int(w), None if x is None else np.ascontiguousarray(x), c)

        def teardown(self):
            close_opened(self.cache)

    class ScoreWindows(beam.DoFn):
        """((cadence, batch), [(window, native, classical), ...]) -> (cadence index, window row)."""

        def __init__(self, job: ScanJob, width: int):
            self.job, self.width = job, width

        def setup(self):
            from tfseti.scan.scoring import WindowScorer

            models, shape = load_models(self.job.models)
            self.scorer = WindowScorer(models, self.job.settings, shape)
            self.cache = {}

        def process(self, element):
            (index, _), items = element
            items = sorted(items, key=lambda item: item[0])
            cadence, plan, _, _ = opened(self.job, self.width, self.cache, index)
            windows = np.array([w for w, _, _ in items])
            # a batch is within one read group: its windows were all cut, or none (no model)
            native = None if items[0][1] is None else np.stack([x for _, x, _ in items])
            for row in self.scorer.rows(cadence, plan, windows, native, [c for _, _, c in items]):
                yield index, row

        def teardown(self):
            close_opened(self.cache)

    class SearchFile(beam.DoFn):
        """(cadence index, file) -> (cadence index, (file, hits)): the per-file hit search."""

        def __init__(self, job: ScanJob, width: int):
            self.job, self.width = job, width

        def setup(self):
            self.cache = {}

        def process(self, element):
            from tfseti.scan.filehits import search_cadence_file

            index, p, coarse = element
            cadence, plan, _, _ = opened(self.job, self.width, self.cache, index)
            yield index, (p, coarse, search_cadence_file(cadence, p, plan.fine_per_coarse,
                                                         self.job.settings, coarse))

        def teardown(self):
            close_opened(self.cache)

    class WriteCadence(beam.DoFn):
        """(cadence index, {rows, files}) -> the cadence folder; yields its name."""

        def __init__(self, job: ScanJob, infos: dict):
            self.job, self.infos = job, infos

        def process(self, element):
            from tfseti.scan.windows import nonfinite_notes

            index, grouped = element
            rows, info = list(grouped["rows"]), self.infos[index]
            # each file's hits in .dat order: coarse channel by coarse channel
            per_file = [[] for _ in info["paths"]]
            for p, _, hits in sorted(grouped["files"], key=lambda item: item[:2]):
                per_file[p].extend(hits)
            # NaN/Inf samples were replaced (tfseti.scan.windows): a note per file, as locally.
            info = {**info, "notes": [*info["notes"], *nonfinite_notes(info["paths"], rows)]}
            outputs.write_cadence(self.job.out, info, rows, per_file)
            yield info["name"]

    return ReadWindows, ScoreWindows, SearchFile, WriteCadence


@contextlib.contextmanager
def private_tempdir():
    """``tempfile``'s default folder is a fresh one inside it while the block runs, removed
    with all it holds afterwards. Beam's Python SDK stages every pipeline's dependencies into a
    ``tempfile.mkdtemp()`` folder that it never removes
    (``apache_beam.transforms.environments.python_sdk_dependencies``): without this, each
    ``--runner`` scan left one folder in the temporary directory."""
    saved = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="tfseti-beam-") as private:
        tempfile.tempdir = private
        try:
            yield private
        finally:
            tempfile.tempdir = saved


def run_beam(job: ScanJob, runner: str, beam_args: list[str], log=print) -> tuple[str, list[dict]]:
    """Run the scan of ``job`` on Beam ``runner`` (see the module docstring), then merge."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    _, model_shape = load_models(job.models)   # checks the models before any worker starts
    width = model_shape[2] if model_shape else job.width
    done = prepare(job, model_shape, runner, log)  # every check, then scan.json
    elements, infos, coarse_counts = [], {}, {}
    for index in range(len(job.cadences)):
        cadence, plan, _, info = plan_cadence(job, index, width)
        try:
            if done[index] is not None:
                log(f"{info['name']}: complete in {outputs.cadence_dir(job.out, info['name'])}: skipped")
                continue
            infos[index] = info
            coarse_counts[index] = len(coarse_ranges(cadence.nchans, plan.fine_per_coarse))
            groups = read_groups(plan, cadence.rows, job.settings.read_mb, job.settings.batch_size)
            elements.extend((index, list(g)) for g in groups)
            log(f"{info['name']}: {info['windows']} windows in {len(groups)} read group(s)")
        finally:
            cadence.close()
    if elements:
        ReadWindows, ScoreWindows, SearchFile, WriteCadence = _dofns()
        files = [(index, p, c) for index, coarse in coarse_counts.items()
                 for p in range(len(job.cadences[index])) for c in range(coarse)]
        options = PipelineOptions(list(beam_args), runner=runner, save_main_session=False)
        with private_tempdir(), beam.Pipeline(options=options) as pipeline:
            rows = (pipeline
                    | "Groups" >> beam.Create(elements)
                    | "Reshuffle" >> beam.Reshuffle()
                    | "ReadWindows" >> beam.ParDo(ReadWindows(job, width))
                    | "Batch" >> beam.GroupByKey()
                    | "Score" >> beam.ParDo(ScoreWindows(job, width)))
            hits = (pipeline
                    | "Files" >> beam.Create(files)
                    | "ReshuffleFiles" >> beam.Reshuffle()
                    | "SearchFile" >> beam.ParDo(SearchFile(job, width)))
            _ = ({"rows": rows, "files": hits}
                 | "ByCadence" >> beam.CoGroupByKey()
                 | "Write" >> beam.ParDo(WriteCadence(job, infos)))
        log(f"{runner}: {len(infos)} cadence(s) written")
    return finish(job, log)
