"""tools/daycache.py: old days' judge material is pruned, today's and yesterday's are kept."""
import datetime
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import daycache  # noqa: E402


def test_prune_keeps_recent_days_and_foreign_names(tmp_path):
    today = datetime.date(2026, 12, 6)
    names = ["nuwa-dpkg-20261206", "nuwa-dpkg-20261205", "nuwa-dpkg-20261204", "nuwa-boot-2026-11-30",
             "other-20261101", "nuwa-notes", "nuwa-bad-20261399"]
    for n in names:
        (tmp_path / n / "sub").mkdir(parents=True)
    (tmp_path / "nuwa-link-20261101").symlink_to(tmp_path / "other-20261101")
    (tmp_path / "nuwa-dpkg-20261201.lock").write_text("")
    removed = daycache.prune(str(tmp_path), prefix="nuwa-", today=today)
    assert sorted(os.path.basename(p) for p in removed) == ["nuwa-boot-2026-11-30", "nuwa-dpkg-20261201.lock",
                                                                 "nuwa-dpkg-20261204"]
    left = sorted(os.listdir(tmp_path))
    assert left == ["nuwa-bad-20261399", "nuwa-dpkg-20261205", "nuwa-dpkg-20261206", "nuwa-link-20261101",
                    "nuwa-notes", "other-20261101"]


def test_prune_of_a_missing_directory_is_nothing(tmp_path):
    assert daycache.prune(str(tmp_path / "absent")) == []
