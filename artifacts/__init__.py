"""The contract between the orchestrator (parent) and the workers (children).

Everything here depends on the standard library and numpy only: paths of a run
directory, atomic writes, job specs, result records, the manifest, fingerprints,
checksums and the event log. Parent and worker exchange nothing but these files.
"""
from artifacts.atomic import atomic_write_bytes, atomic_write_json, atomic_save_npy, read_json
from artifacts.checksums import file_digest, verify_files, ChecksumError
from artifacts.paths import RunPaths, JobPaths, DatasetPaths
from artifacts.records import JobState, JobSpec, ResultRecord, Manifest, ManifestEntry
from artifacts.events import append_event, read_events

__all__ = [
    "atomic_write_bytes", "atomic_write_json", "atomic_save_npy", "read_json",
    "file_digest", "verify_files", "ChecksumError",
    "RunPaths", "JobPaths", "DatasetPaths",
    "JobState", "JobSpec", "ResultRecord", "Manifest", "ManifestEntry",
    "append_event", "read_events",
]
