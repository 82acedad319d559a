"""Files of the command lines (``python -m skval`` and ``python -m skval.distributed``):
reading a CSV, refusing unsafe outputs, writing atomically.

A leaf module: it imports nothing from the rest of skval. Problems a user can fix
raise :class:`FileError` with the message to show; each command line turns it into
its own exit (the distributed one prints on rank 0 only).
"""

from __future__ import annotations

import os
import tempfile

__all__ = ["FileError", "check_outputs", "import_pandas", "read_csv", "require_file",
           "write_atomically"]


class FileError(Exception):
    """An input or output file a command line cannot use; the message says why."""


def import_pandas():
    """Import pandas, an optional extra, with a message that says how to install it.

    Returns
    -------
    pandas : module
        The pandas module.
    """
    try:
        import pandas
    except ImportError:  # pragma: no cover - pandas is an optional extra
        raise ImportError("This needs pandas: pip install 'skval[pandas]'.") from None
    return pandas


def require_file(path):
    """Raise :class:`FileError` unless ``path`` exists.

    Parameters
    ----------
    path : str
        The input file.
    """
    if not os.path.exists(path):
        raise FileError(f"no such file: {path}")


def read_csv(path, target):
    """The table of a CSV file with a header line, at least one row and a ``target`` column.

    Parameters
    ----------
    path : str
        The CSV file.
    target : str
        The name of the column that must be there.

    Returns
    -------
    frame : pandas.DataFrame
        The whole table, as ``pandas.read_csv`` reads it.
    """
    pd = import_pandas()
    require_file(path)
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise FileError(f"{path} is empty") from None
    if frame.empty:
        raise FileError(f"{path} has a header but no rows")
    if target not in frame.columns:
        raise FileError(f"column {target!r} not in {path}; columns: "
                        f"{', '.join(map(str, frame.columns))}")
    return frame


def check_outputs(source, outputs, overwrite):
    """Raise :class:`FileError` for an output that is the input, that two outputs share,
    or that exists when ``overwrite`` is false.

    Parameters
    ----------
    source : str
        The input file, never to be written over.
    outputs : list of str or None
        The output paths; ``None`` or ``""`` for an output not asked for.
    overwrite : bool
        Whether an existing output may be replaced.
    """
    outputs = [path for path in outputs if path]
    # compare resolved paths: "./a.csv", "a.csv" and a link to it are the same file
    real = [os.path.realpath(path) for path in outputs]
    for path, resolved in zip(outputs, real):
        if resolved == os.path.realpath(source):
            raise FileError(f"{path} is the input file; refusing to write over it, "
                            "choose another path")
        if real.count(resolved) > 1:
            raise FileError(f"{path} is given for two outputs; choose a path for each")
        if not overwrite and os.path.exists(path):
            raise FileError(f"{path} exists; pass --overwrite to replace it, or choose another path")


def write_atomically(path, write):
    """``write(tmp)`` to a temporary file beside ``path``, then rename it to ``path``.

    An interrupted ``write`` leaves any previous ``path`` as it was, and no
    temporary file behind. The file gets the permissions a plain ``open(path, "w")``
    would give it: those of the file it replaces, else ``0o666`` less the umask
    (a temporary file alone would be ``0o600``).

    Parameters
    ----------
    path : str
        The file to write.
    write : callable
        ``write(tmp)`` writes the whole content to the path ``tmp``.
    """
    folder, name = os.path.split(os.path.abspath(path))
    # same folder (a rename is atomic only within a file system), same suffix (savefig reads it)
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=os.path.splitext(name)[1])
    os.close(handle)
    try:
        write(tmp)
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _mode_for(path):
    """The permission bits of ``path`` if it exists, else ``0o666`` less the umask."""
    if os.path.exists(path):
        return os.stat(path).st_mode & 0o7777
    umask = os.umask(0)  # reading the umask sets it: put it back at once
    os.umask(umask)
    return 0o666 & ~umask
