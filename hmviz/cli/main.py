"""``python -m hmviz <verb>``: each verb is a thin wrapper over library calls.

User errors (:class:`hmviz.errors.HmvizError`) and bad flags print one ``error: ...`` line on
stderr and exit with status 2, never a traceback. ``--debug`` shows the traceback of unexpected
errors.
"""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Sequence

from hmviz.cli.registry import _VERBS, EXIT_INTERNAL, EXIT_OK, EXIT_USER_ERROR, build_parser
from hmviz.errors import HmvizError

log = logging.getLogger("hmviz")

#: Errors of the user's file system, reported as user errors (exit 2): permissions, a read-only or full
#: disk, a missing or wrong kind of path.
_USER_OS_ERRORS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ENAMETOOLONG,
        errno.ELOOP,
        errno.EEXIST,
        errno.ENOTEMPTY,
        errno.EXDEV,
    }
)


# Verbs that run torch work: they set torch's thread count from the free cores first (hmviz.runtime).
_TORCH_VERBS = frozenset({"train", "evaluate", "explain", "ablate", "baselines"})


def main(argv: Sequence[str] | None = None) -> int:
    from hmviz.runtime import apply_threads, configure_openmp

    configure_openmp()  # before any verb loads torch
    _load_verbs()
    parser = build_parser(__doc__.splitlines()[0])
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad flag (2, one 'error:' line already printed)
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Python warnings from libraries (numpy's RuntimeWarning, ...) go to the log, shown with --verbose,
    # so that a user's error stays one 'error:' line.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.INFO if args.verbose else logging.ERROR)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return EXIT_USER_ERROR
    try:
        if args.verb in _TORCH_VERBS:
            apply_threads()
        return int(args.run(args) or EXIT_OK)
    except HmvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # e.g. piped into `head`: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # the user's file system refused (permissions, full disk, read-only, ...)
        if exc.errno not in _USER_OS_ERRORS:
            if args.debug:
                raise
            print(
                f"error: internal error (OSError: {exc}). This is a bug in hmviz; rerun with --debug and "
                "report the traceback.",
                file=sys.stderr,
            )
            return EXIT_INTERNAL
        where = exc.filename or "a file or folder"
        print(
            f"error: {where}: {exc.strerror}. Check that the path exists and that you may read (or write) "
            "it, that the disk has space, or choose another path.",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written for the unfinished step.", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so in one line unless --debug
        if args.debug:
            raise
        print(
            f"error: internal error ({type(exc).__name__}: {exc}). This is a bug in hmviz; "
            "rerun with --debug and report the traceback.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _load_verbs() -> None:
    """Import the modules that define verbs (each registers itself with :func:`hmviz.cli.registry.verb`)."""
    if _VERBS:
        return
    import hmviz.cli.ablate  # noqa: F401  ablate
    import hmviz.cli.data  # noqa: F401  validate, convert
    import hmviz.cli.explain  # noqa: F401  explain
    import hmviz.cli.model  # noqa: F401  train, evaluate, models
    import hmviz.cli.perturb  # noqa: F401  perturb
    import hmviz.cli.study  # noqa: F401  study run, study summarize
    import hmviz.cli.tracks  # noqa: F401  build-table
