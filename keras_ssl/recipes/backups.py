"""Files of a run that must survive being killed at any moment, without Keras.

- Backups: `ResumableBackup` (keras_ssl.callbacks) writes each backup as a
  folder `step-NNNNNNNNN/` under a temporary name, flushes its files, writes
  a `COMPLETE` record of their sizes and SHA-256 last and renames the folder
  into place. `newest_backup` finds the newest complete one and reports the
  damaged ones; the CLI reads a backup's settings (`saved_run_config`) and
  compares them with the new run's (`differences`) before any framework is
  imported.
- The output folder: `check_out` says whether it takes a new run, resumes
  one or holds a finished one, before any framework is imported.
- Outputs: `publish` moves files written in a staging folder into the
  output folder one rename at a time, `summary.json` last, so a folder with a
  `summary.json` holds a finished run.
- Fault points: `fault_point(name)` kills the process with SIGKILL when
  `$KERAS_SSL_FAULT` names that point (`NAME` or `NAME:N` for its N-th
  passage): the fault-injection tests kill runs at chosen moments with it.
"""

import hashlib
import json
import os
import shutil
import signal

BACKUP = "backup"  # the backup folder inside a run's output folder
PREFIX = "step-"
COMPLETE = "COMPLETE"
RUN_CONFIG = "run_config.json"
STAGING = ".incomplete"
SUMMARY = "summary.json"

_passages = {}
_reported = set()  # damaged backups already reported by this process


def fault_point(name):
    """SIGKILLs this process at the passage `$KERAS_SSL_FAULT` names."""
    wanted = os.environ.get("KERAS_SSL_FAULT")
    if not wanted:
        return
    point, _, count = wanted.partition(":")
    if point != name:
        return
    _passages[name] = _passages.get(name, 0) + 1
    if _passages[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_file(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # a file system without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def digest(path):
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def seal(folder, step):
    """Flushes every file of `folder` and writes its `COMPLETE` record."""
    record = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        fsync_file(path)
        record[name] = [os.path.getsize(path), digest(path)]
    with open(os.path.join(folder, COMPLETE), "w") as f:
        json.dump({"files": record, "step": int(step)}, f)
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(folder)


def check(folder):
    """None if `folder` is a complete backup, else what is wrong with it."""
    record_path = os.path.join(folder, COMPLETE)
    if not os.path.exists(record_path):
        return "it was not finished"
    try:
        with open(record_path) as f:
            record = json.load(f)
        for name, (size, sha) in record["files"].items():
            path = os.path.join(folder, name)
            if not os.path.exists(path):
                return f"{name} is missing"
            if os.path.getsize(path) != size or digest(path) != sha:
                return f"{name} is damaged"
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"its record is unreadable ({type(error).__name__})"
    return None


def backups(backup_dir):
    """The backup folders in `backup_dir`, newest first."""
    if not os.path.isdir(backup_dir):
        return []
    names = [n for n in os.listdir(backup_dir)
             if n.startswith(PREFIX) and n[len(PREFIX):].isdigit()]
    return [os.path.join(backup_dir, n) for n in sorted(names, reverse=True)]


def newest_backup(backup_dir, on_message=print):
    """The newest complete backup folder, or None; every damaged or partial
    one passed over is reported in one line through `on_message` (once per
    process)."""
    chosen, damaged = None, []
    for folder in backups(backup_dir):
        problem = check(folder)
        if problem is None:
            chosen = folder
            break
        damaged.append((os.path.basename(folder), problem))
    for name, problem in damaged:
        if (backup_dir, name) in _reported:
            continue
        _reported.add((backup_dir, name))
        instead = (f"using {os.path.basename(chosen)} instead" if chosen
                   else "starting from the beginning")
        on_message(f"keras-ssl: the backup {name} in {backup_dir} is not "
                   f"usable ({problem}); {instead}")
    return chosen


def saved_run_config(folder):
    """The run settings stored with a backup folder, or None."""
    path = folder and os.path.join(folder, RUN_CONFIG)
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def read_metadata(folder):
    """A backup folder's `{"epoch", "batch", "step", "steps_per_epoch"}`."""
    with open(os.path.join(folder, "training_metadata.json")) as f:
        return json.load(f)


def differences(saved, now, prefix=""):
    """`(key, saved value, current value)` for every setting that differs."""
    now = json.loads(json.dumps(now, default=str))
    found = []
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append((f"{prefix}{key}", a, b))
    return found


def mismatch_message(backup_dir, saved, now):
    """One line naming the settings a backup and this run disagree on, or
    None when they agree."""
    differ = differences(saved, now)
    if not differ:
        return None
    shown = "; ".join(f"{k} {a!r} in the backup, {b!r} now" for k, a, b in differ[:6])
    more = f" (and {len(differ) - 6} more)" if len(differ) > 6 else ""
    return (f"the backup in {backup_dir} is of a run with other settings "
            f"({shown}{more}): rerun with the same settings, or pass --restart "
            "to start over")


def publish(staging, out):
    """Moves every file and folder of `staging` into `out` (one atomic
    rename each, replacing what is there), `summary.json` last, then removes
    `staging`."""
    names = sorted(os.listdir(staging), key=lambda n: (n == SUMMARY, n))
    for name in names:
        source, target = os.path.join(staging, name), os.path.join(out, name)
        if os.path.isdir(source):
            fault_point("outputs.publish")
            if os.path.isdir(target):
                old = target + ".old"
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
                os.replace(source, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(source, target)
        else:
            fsync_file(source)
            fault_point("outputs.publish")
            os.replace(source, target)
    fsync_dir(out)
    shutil.rmtree(staging, ignore_errors=True)


def backup_dir_of(out):
    """Where `keras-ssl pretrain` keeps its backup inside `--out`."""
    return os.path.join(str(out), BACKUP)


def check_out(out, resume, restart, run_config):
    """`(state, backup folder)` of the output folder `out`, checked before
    training: state `"new"`, `"resume"` (with the newest complete backup) or
    `"finished"`; a `ValueError` for a folder that cannot take the run."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out} is not writable ({existing} is read-only)")
    if not out.exists():
        return "new", None
    backup_dir = backup_dir_of(out)
    if restart:
        shutil.rmtree(backup_dir, ignore_errors=True)
        shutil.rmtree(out / STAGING, ignore_errors=True)
        return "new", None
    if (out / SUMMARY).exists():
        if resume:
            shutil.rmtree(backup_dir, ignore_errors=True)
            shutil.rmtree(out / STAGING, ignore_errors=True)
            return "finished", None
        raise ValueError(f"{out} holds a finished run (summary.json): pass "
                         "another --out, or --restart to train there again")
    if backups(backup_dir) and not resume:
        raise ValueError(f"{out} holds the backup of an interrupted run: pass "
                         "--resume to continue it, or --restart to start over")
    others = set(os.listdir(out)) - {BACKUP, STAGING, "framework.log"}
    if others and not resume:
        raise ValueError(f"{out} is not empty: pass another --out, or --restart "
                         "to train there and replace its outputs")
    folder = newest_backup(backup_dir)
    saved = saved_run_config(folder)
    if saved is not None:
        message = mismatch_message(backup_dir, saved, run_config)
        if message:
            raise ValueError(message)
    return ("resume", folder) if folder else ("new", None)
