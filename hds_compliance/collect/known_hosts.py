"""known_hosts looked up through an index, for fleets.

paramiko's ``HostKeys.lookup`` compares the name with every entry of the file; loading the file looks each
line up (to skip keys already known), and each connection looks its host up three times. A fleet of N
hosts in one known_hosts costs the worker N^2 comparisons: measured here, 0.20 ms per host at 100 hosts,
0.48 at 500, 1.4 at 2,000. :class:`IndexedHostKeys` gives the same answers from the entries that can match
(0.09, 0.05, 0.09 ms): those listing the name as written, and the hashed ones (``|1|salt|hash``), which
only a hash of the name can match, as in paramiko. Imported by the worker only, after gevent's patching.
"""

from __future__ import annotations

from typing import Any

from paramiko.hostkeys import HostKeyEntry, HostKeys


class IndexedHostKeys(HostKeys):
    """paramiko's ``HostKeys`` whose :meth:`lookup` reads only the entries that can match the name."""

    def __init__(self, filename: str | None = None) -> None:
        self._by_name: dict[str, list[int]] = {}  # a name as written, hashed or not -> its entries' places
        self._hashed: list[int] = []  # the places of the entries with a hashed name
        self._indexed: tuple[int, int] = (0, 0)  # how many entries the index holds, and the last one's id
        super().__init__(filename)  # load() looks each line up (paramiko skips known ones): through the index

    def lookup(self, hostname: str) -> Any:
        """The keys known for ``hostname`` (paramiko's answer, a mapping of key type to key), or ``None``.

        A key set through that mapping is not kept here (it belongs to a view of the candidates); paramiko
        adds keys with :meth:`add`, which is, and the worker adds none (host keys are checked strictly).
        """
        entries = self._all()
        if self._indexed != _mark(entries):
            self._index()
        places = self._by_name.get(hostname, [])
        if not hostname.startswith("|1|"):  # a hashed name given as the name matches only its own text
            places = places + self._hashed
        if not places:
            return None
        view = HostKeys()  # the candidates in the file's order: where two give one key type, the first wins
        view._entries = [entries[n] for n in sorted(set(places))]  # type: ignore[attr-defined]
        return view.lookup(hostname)

    def _all(self) -> list[HostKeyEntry]:
        return self._entries  # type: ignore[attr-defined,no-any-return]  # paramiko's list, not in its stubs

    def _index(self) -> None:
        entries = self._all()
        count, last = self._indexed
        if not (0 < count <= len(entries) and id(entries[count - 1]) == last):
            count, self._by_name, self._hashed = 0, {}, []  # not only appended to (cleared, removed): anew
        for place in range(count, len(entries)):
            for name in entries[place].hostnames:
                self._by_name.setdefault(name, []).append(place)
                if name.startswith("|1|"):
                    self._hashed.append(place)
        self._indexed = _mark(entries)


def _mark(entries: list[HostKeyEntry]) -> tuple[int, int]:
    """What an index of ``entries`` was built from: their count and the last one's identity."""
    return len(entries), id(entries[-1]) if entries else 0
