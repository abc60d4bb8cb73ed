import errno

import pytest

from nuwa.errors import (
    CorruptImageError,
    InternalError,
    InvalidInputError,
    OperationFailedError,
    UnsupportedFeatureError,
    fs_error,
)


def test_errors_are_builtin_exceptions_with_errno_and_exit_code():
    e = CorruptImageError("bad magic", where="qcow2 header @0x0")
    assert isinstance(e, OSError) and e.errno == errno.EUCLEAN and e.exit_code == 3
    assert str(e) == "qcow2 header @0x0: bad magic"
    u = UnsupportedFeatureError("encryption", feature="crypt_method")
    assert isinstance(u, OSError) and u.errno == errno.EOPNOTSUPP and u.exit_code == 3
    i = InvalidInputError("no such file")
    assert isinstance(i, ValueError) and i.exit_code == 2
    assert isinstance(OperationFailedError("x"), RuntimeError)
    assert str(InternalError("boom")).startswith("internal error")


def test_fs_error_maps_to_os_subclasses():
    assert isinstance(fs_error(errno.ENOENT, "/a"), FileNotFoundError)
    assert isinstance(fs_error(errno.EEXIST, "/a"), FileExistsError)
    with pytest.raises(IsADirectoryError):
        raise fs_error(errno.EISDIR, "/a")
