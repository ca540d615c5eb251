"""What the embedded DNS server replies to one query, independent of sockets.

Names of containers (as the Resolver sees them from the asking container) are answered here:
A records with TTL 600, an empty NOERROR for other types of a known name (AAAA included, as
containers have no IPv6 here), PTR records for their addresses. Everything else is forwarded to
the container's upstream servers and their reply is passed back as it came. No upstream (no
servers configured, or an internal network) means SERVFAIL; Docker answers some of these cases
with REFUSED, SERVFAIL is what we pick everywhere, as a resolver tells its caller "no luck here".
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.ANY.PTR
import dns.reversename
import dns.rrset

from dockyard.network import dns_upstream

log = logging.getLogger(__name__)

TTL = 600
MAX_FORWARDS = 100  # forwarded queries in flight at once, all containers together
MAX_UPSTREAMS = 3   # servers tried for one query, in order
UDP_DEFAULT = 512   # reply size limit for a UDP client without EDNS


class Resolver(Protocol):
    """The engine's view of container names, seen from one sandbox (container id)."""

    def lookup(self, sandbox: str, name: str) -> list[str] | None:
        """IPv4s for name (lower case, no trailing dot); None when it is not one of ours."""

    def reverse(self, sandbox: str, ip: str) -> str | None:
        """The name answered for a PTR query of ip; None to forward the query."""

    def upstreams(self, sandbox: str) -> list[str]:
        """Servers to forward to, "ip" or "ip:port"; [] (e.g. internal network) -> SERVFAIL."""


def parse(wire: bytes) -> dns.message.Message | None:
    """The query in wire, or None for anything that is not a well-formed query (to be dropped)."""
    try:
        msg = dns.message.from_wire(wire)
    except Exception:  # dnspython raises many kinds on garbage; all mean "drop it"
        return None
    if msg.flags & dns.flags.QR:
        return None
    return msg


def reply_limit(query: dns.message.Message, tcp: bool) -> int:
    """The largest reply the client takes: 65535 over TCP, else its EDNS payload or 512."""
    if tcp:
        return dns_upstream.MAX_MESSAGE
    if query.edns >= 0:
        return max(UDP_DEFAULT, min(query.payload, dns_upstream.MAX_MESSAGE))
    return UDP_DEFAULT


def _response(query: dns.message.Message, rcode: dns.rcode.Rcode = dns.rcode.NOERROR
              ) -> dns.message.Message:
    resp = dns.message.make_response(query)
    resp.flags |= dns.flags.RA
    resp.set_rcode(rcode)
    return resp


def error_wire(query: dns.message.Message, rcode: dns.rcode.Rcode) -> bytes:
    """A reply with rcode and no records, for a query that could be parsed."""
    try:
        return _response(query, rcode).to_wire()
    except Exception:
        return b""


def _to_wire(resp: dns.message.Message, limit: int) -> bytes:
    return resp.to_wire(max_size=limit, prefer_truncation=True)


def _question_name(query: dns.message.Message) -> str:
    return query.question[0].name.to_text(omit_final_dot=True).lower()


class Answerer:
    """Answers queries for a Resolver; local answers are synchronous, forwarding is a coroutine."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver
        self._forwards: asyncio.Semaphore | None = None

    def local(self, sandbox: str, query: dns.message.Message, tcp: bool) -> bytes | None:
        """The reply when it can be made without an upstream; None means forward it."""
        if query.opcode() != dns.opcode.QUERY:
            return error_wire(query, dns.rcode.NOTIMP)
        if len(query.question) != 1:
            return error_wire(query, dns.rcode.FORMERR)
        q = query.question[0]
        if q.rdclass != dns.rdataclass.IN:
            return None
        try:
            resp = self._own(sandbox, query, q)
        except Exception:
            log.exception("embedded DNS: resolver failed for %s", q.name)
            return error_wire(query, dns.rcode.SERVFAIL)
        return None if resp is None else _to_wire(resp, reply_limit(query, tcp))

    def _own(self, sandbox: str, query: dns.message.Message, q: dns.rrset.RRset
             ) -> dns.message.Message | None:
        if q.rdtype == dns.rdatatype.PTR:
            return self._ptr(sandbox, query, q)
        ips = self._resolver.lookup(sandbox, _question_name(query))
        if ips is None:
            return None
        resp = _response(query)
        if q.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY) and ips:
            rrset = dns.rrset.RRset(q.name, dns.rdataclass.IN, dns.rdatatype.A)
            rrset.update_ttl(TTL)
            for ip in ips:
                rrset.add(dns.rdtypes.IN.A.A(dns.rdataclass.IN, dns.rdatatype.A, ip))
            resp.answer.append(rrset)
        return resp  # other types of a known name: NOERROR, no records

    def _ptr(self, sandbox: str, query: dns.message.Message, q: dns.rrset.RRset
             ) -> dns.message.Message | None:
        try:
            ip = dns.reversename.to_address(q.name)
        except (dns.exception.DNSException, ValueError):
            return None
        target = self._resolver.reverse(sandbox, ip)
        if not target:
            return None
        resp = _response(query)
        rrset = dns.rrset.RRset(q.name, dns.rdataclass.IN, dns.rdatatype.PTR)
        rrset.update_ttl(TTL)
        name = dns.name.from_text(target.rstrip(".") + ".")
        rrset.add(dns.rdtypes.ANY.PTR.PTR(dns.rdataclass.IN, dns.rdatatype.PTR, name))
        resp.answer.append(rrset)
        return resp

    async def forward(self, sandbox: str, query: dns.message.Message, wire: bytes, tcp: bool
                      ) -> bytes:
        """The upstream's reply to wire, or SERVFAIL when none answers (or too many in flight)."""
        if self._forwards is None:
            self._forwards = asyncio.Semaphore(MAX_FORWARDS)
        if self._forwards.locked():
            return error_wire(query, dns.rcode.SERVFAIL)
        async with self._forwards:
            reply = await self._try_upstreams(sandbox, wire, reply_limit(query, tcp))
        return reply if reply is not None else error_wire(query, dns.rcode.SERVFAIL)

    async def _try_upstreams(self, sandbox: str, wire: bytes, limit: int) -> bytes | None:
        try:
            servers = self._resolver.upstreams(sandbox)
        except Exception:
            log.exception("embedded DNS: no upstreams for %s", sandbox)
            return None
        for text in servers[:MAX_UPSTREAMS]:
            try:
                addr = dns_upstream.parse_address(text)
            except ValueError:
                log.warning("embedded DNS: ignoring bad upstream %r", text)
                continue
            try:
                return await dns_upstream.exchange(wire, addr, limit)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
                log.debug("embedded DNS: upstream %s failed: %r", text, e)
        return None
