"""Child processes the e2e tests and the benchmarks start (Celery worker, beat)."""

import os
import signal
import subprocess


def process_group_stop(popen: subprocess.Popen) -> None:
    """
    SIGTERM to the process group (a warm shutdown), SIGKILL if it lingers, then
    SIGKILL to whatever of the group outlived it (a stray pool process).
    The process must have been started with start_new_session=True.
    """
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if popen.poll() is not None:
            break
        try:
            os.killpg(popen.pid, sig)
            popen.wait(grace)
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
