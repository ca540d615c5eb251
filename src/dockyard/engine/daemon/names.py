"""Container names and ids: validation, generation, and prefix resolution.

Docker names containers ``/name`` internally (the slash is stripped from what
users type), accepts ``[a-zA-Z0-9][a-zA-Z0-9_.-]+``, invents
``adjective_surname`` names when none is given, and resolves a reference as a
full id, then an exact name, then a unique id prefix. Messages are Docker's.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable, Iterator

from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound

NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
NAME_RE = re.compile("^" + NAME_CHARS + "+$")

_ADJECTIVES = (
    "adoring agile amazing ample artful astute awesome balmy bold brave breezy bright brisk "
    "busy calm candid careful cheerful clever cosmic crisp curious daring dazzling deft "
    "devoted diligent dreamy eager earnest elated elegant epic exact fearless fervent "
    "festive fluent focused friendly gallant gentle gifted glad glowing graceful happy "
    "hardy hearty helpful honest hopeful humble jolly jovial keen kind lively loyal lucid "
    "lucky mellow merry mighty modest nimble noble patient peaceful plucky polite proud "
    "quick quiet radiant rapid ready robust rosy serene sharp shiny silly sincere smart "
    "snappy sober spry stoic sturdy sunny swift tender thrifty tidy trusty upbeat valiant "
    "vibrant vivid warm wise witty zealous zesty"
).split()

_SURNAMES = (
    "abel agnesi al_khwarizmi alhazen ampere archimedes aryabhata avogadro babbage backus "
    "banach bardeen bell bernoulli bessel bohr boltzmann boole borg bose brahe brattain "
    "cannon cantor cardano carnot carver cauchy cavendish cayley chandrasekhar chebyshev "
    "clausius conway copernicus coulomb cray curie darwin dedekind descartes diffie dijkstra "
    "dirac doppler edison ehrenfest einstein engelbart euclid euler faraday fermat fermi "
    "feynman fibonacci fourier franklin fresnel galileo galois galvani gauss germain gibbs "
    "goodall gosling haber hamilton hamming hawking heaviside heisenberg helmholtz hertz "
    "hilbert hodgkin hollerith hooke hopper hubble huygens hypatia jacobi johnson joule "
    "kapitsa kelvin kepler khayyam kilby klein knuth kolmogorov kovalevskaya lagrange "
    "lamarr lamport laplace lavoisier leavitt leibniz lemaitre liskov lorentz lovelace "
    "lovell maxwell mcclintock meitner mendel mendeleev michelson minsky mirzakhani "
    "moseley napier neumann newton noether nyquist ohm oppenheimer pascal pasteur pauli "
    "pauling planck poincare raman ramanujan rayleigh riemann ritchie rutherford sagan "
    "salk schrodinger shannon shockley snell somerville stallman sutherland tesla "
    "thompson torvalds turing volta wallace watt weierstrass wiles wu yukawa zuse"
).split()

_NEVER = frozenset({"boring_wozniak"})
_RETRIES = 6


def strip_slash(name: str) -> str:
    """The name as users see it, without Docker's internal leading slash."""
    return name[1:] if name.startswith("/") else name


def validate_name(name: str) -> str:
    """Check a user-given container name; return it in Docker's ``/name`` form."""
    if not NAME_RE.match(strip_slash(name)):
        raise InvalidArgument(f"Invalid container name ({name}), only {NAME_CHARS} are allowed")
    return "/" + strip_slash(name)


def name_conflict(name: str, owner_id: str) -> Conflict:
    """Docker's error for a name already used by another container."""
    shown = "/" + strip_slash(name)
    return Conflict(
        f'Conflict. The container name "{shown}" is already in use by container '
        f'"{owner_id}". You have to remove (or rename) that container to be able to '
        "reuse that name.",
        id=owner_id,
    )


def _candidate(rng: random.Random, retry: int) -> str:
    """One ``adjective_surname`` guess; retries get a trailing digit, like Docker."""
    while True:
        name = f"{rng.choice(_ADJECTIVES)}_{rng.choice(_SURNAMES)}"
        if name not in _NEVER:
            break
    if retry > 0:
        name += str(rng.randrange(10 if retry < _RETRIES else 100))
    return name


def random_name(
    taken: Callable[[str], bool],
    fallback: str | None = None,
    rng: random.Random | None = None,
) -> str:
    """A fresh ``adjective_surname`` name (without slash) that ``taken`` rejects not.

    Six tries as Docker makes (the later ones with a digit appended); then the
    ``fallback`` (Docker uses the short id) if free; then more tries with two
    digits; Conflict if every try was taken.
    """
    rng = rng or random.Random()
    for retry in range(_RETRIES):
        name = _candidate(rng, retry)
        if not taken(name):
            return name
    if fallback is not None and not taken(fallback):
        return fallback
    for retry in range(_RETRIES, 1000):
        name = _candidate(rng, retry)
        if not taken(name):
            return name
    raise Conflict("could not generate a free container name")


def new_id() -> str:
    """A random 64-hex id (256 bits from the OS)."""
    return os.urandom(32).hex()


def short_id(full_id: str) -> str:
    """The 12-character id ``docker ps`` shows (a ``sha256:`` prefix is dropped)."""
    return full_id.removeprefix("sha256:")[:12]


class IdIndex:
    """Resolve what a user typed to one object id: full id, exact name, or unique id prefix.

    ``kind`` words the not-found error (``No such container: x``). Names are
    kept without the leading slash; lookups accept either form.
    """

    def __init__(self, kind: str = "container") -> None:
        self.kind = kind
        self._names: dict[str, str] = {}
        self._ids: dict[str, str] = {}

    def add(self, obj_id: str, name: str | None = None) -> None:
        """Register an id (and its name); a name owned by another id is a Conflict."""
        if name:
            bare = strip_slash(name)
            owner = self._names.get(bare)
            if owner is not None and owner != obj_id:
                raise name_conflict(bare, owner)
            old = self._ids.get(obj_id)
            if old and old != bare:
                self._names.pop(old, None)
            self._names[bare] = obj_id
            self._ids[obj_id] = bare
        else:
            self._ids.setdefault(obj_id, "")

    def remove(self, obj_id: str) -> None:
        """Forget an id and its name (no error if unknown)."""
        name = self._ids.pop(obj_id, None)
        if name:
            self._names.pop(name, None)

    def rename(self, obj_id: str, new_name: str) -> None:
        """Move an id to a new name, keeping names unique."""
        self.add(obj_id, new_name)

    def name_of(self, obj_id: str) -> str | None:
        """The name (without slash) of an id, or None."""
        return self._ids.get(obj_id) or None

    def id_of_name(self, name: str) -> str | None:
        """The id owning an exact name (with or without slash), or None."""
        return self._names.get(strip_slash(name))

    def __contains__(self, obj_id: object) -> bool:
        return obj_id in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._ids))

    def __len__(self) -> int:
        return len(self._ids)

    def get(self, ref: str) -> str:
        """Resolve ``ref`` as Docker's ``GetContainer`` does.

        Empty: InvalidArgument ``invalid name or ID supplied: ""``. Unknown:
        NotFound ``No such <kind>: ref``. A prefix of several ids: DockyardError
        (a 500 in Docker) ``Multiple IDs found with provided prefix: ref``.
        """
        if not ref:
            raise InvalidArgument('invalid name or ID supplied: ""')
        if ref in self._ids:
            return ref
        by_name = self.id_of_name(ref)
        if by_name is not None:
            return by_name
        hits = [i for i in self._ids if i.startswith(ref)]
        if not hits:
            raise NotFound(f"No such {self.kind}: {ref}", id=ref)
        if len(hits) > 1:
            raise DockyardError(f"Multiple IDs found with provided prefix: {ref}", id=ref)
        return hits[0]

    def get_by_prefix(self, prefix: str) -> str | None:
        """Only the unique-id-prefix rule (truncindex); None if absent or ambiguous."""
        hits = [i for i in self._ids if prefix and i.startswith(prefix)]
        return hits[0] if len(hits) == 1 else None
