"""Run one command and write its wall time, peak RSS and CPU time as JSON.

    python3 -I -S bench/measure.py RESULT.json COMMAND [ARG ...]

Why a separate, small process: Linux carries a process's peak RSS across fork and exec
(the forked copy of the parent and the pre-exec image count toward the child's
ru_maxrss). Started straight from run.py, the engine would report at least run.py's own
peak (tens of MiB, hundreds after generating a large input). This launcher is a fresh,
small interpreter; it forks the command, so the command's ru_maxrss, read with os.wait4,
starts from this launcher's few MiB and is otherwise the command's own.

Writes {"wall_s", "cpu_s", "user_s", "sys_s", "maxrss_kib", "exit_code"} to RESULT.json
and exits with the command's exit code. Standard library only; imports nothing heavy.
"""
import os
import sys
import time


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        except OSError as e:
            os.write(2, f"measure.py: cannot run {argv[0]}: {e}\n".encode())
        os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    import json   # only now, so the forked image stays as small as possible
    rss = ru.ru_maxrss // 1024 if sys.platform == "darwin" else ru.ru_maxrss   # Linux: KiB
    with open(out, "w") as f:
        json.dump({"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "user_s": ru.ru_utime,
                   "sys_s": ru.ru_stime, "maxrss_kib": rss, "exit_code": code}, f)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
