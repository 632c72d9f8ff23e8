"""Test-only era1 writer: a short chain of realistic-looking pre-merge blocks, written as a real
era1 file (era-format.md §6).

Independent of era_tools.era1: headers, bodies and receipts are encoded with the `rlp` package,
block hashes with pycryptodome's keccak, and the accumulator root with remerkleable (the
executable spec's SSZ library).  Only era_tools.e2store / framing write the records.
(No `from __future__ import annotations` here: remerkleable reads Container annotations as
types.)
"""

import os
import random
import struct
from dataclasses import dataclass, replace

import rlp
from Crypto.Hash import keccak
from remerkleable.basic import uint256
from remerkleable.byte_arrays import Bytes32
from remerkleable.complex import Container, List

from era_tools import e2store, framing

EPOCH_SIZE = 8192


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


class HeaderRecord(Container):
    block_hash: Bytes32
    total_difficulty: uint256


Accumulator = List[HeaderRecord, EPOCH_SIZE]


@dataclass(frozen=True)
class Block:
    number: int
    fields: tuple  # the 15 header fields, ints and bytes as rlp encodes them
    header_rlp: bytes
    body_rlp: bytes
    receipts_rlp: bytes
    td: int

    @property
    def hash(self) -> bytes:
        return keccak256(self.header_rlp)

    @property
    def difficulty(self) -> int:
        return self.fields[7]

    def with_header_field(self, index: int, value) -> "Block":
        """The same block with one header field changed (and its RLP re-encoded)."""
        fields = list(self.fields)
        fields[index] = value
        return replace(self, fields=tuple(fields), header_rlp=rlp.encode(fields))


def _bloom(rng: random.Random) -> bytes:
    b = bytearray(256)
    for _ in range(rng.randrange(0, 24)):
        bit = rng.randrange(2048)
        b[bit // 8] |= 1 << (bit % 8)
    return bytes(b)


def _tx(rng: random.Random) -> list:
    """A legacy (pre-EIP-2718) transaction: nonce, gas price, gas, to, value, data, v, r, s."""
    data = rng.randbytes(rng.choice([0, 4, 68, 132, 300]))
    return [rng.randrange(0, 5000), rng.randrange(10**9, 200 * 10**9), rng.randrange(21000, 500000),
            rng.randbytes(20), rng.randrange(0, 10**19), data, rng.choice([27, 28, 37, 38]),
            rng.randrange(1, 2**256), rng.randrange(1, 2**255)]


def _receipt(rng: random.Random, cumulative_gas: int) -> list:
    logs = [[rng.randbytes(20), [rng.randbytes(32) for _ in range(rng.randrange(1, 4))],
             rng.randbytes(rng.choice([0, 32, 64]))] for _ in range(rng.randrange(0, 3))]
    return [1, cumulative_gas, _bloom(rng), logs]  # post-Byzantium status receipt


def make_chain(n: int = 50, start: int = 3 * EPOCH_SIZE, seed: int = 1,
               start_td: int = 10**21, parent: bytes | None = None) -> list[Block]:
    """n pre-merge blocks numbered from `start`, linked by parent hash, with bodies, receipts
    and total difficulty (td of the block before `start` is `start_td`; the first block's
    parent is `parent`, else random)."""
    rng = random.Random(seed)
    parent = rng.randbytes(32) if parent is None else parent
    td = start_td
    timestamp = 1_500_000_000 + start * 14
    difficulty = 2_000_000_000_000 + rng.randrange(10**9)
    gas_limit = 8_000_000
    blocks = []
    for k in range(n):
        number = start + k
        txs = [_tx(rng) for _ in range(rng.randrange(0, 6))]
        uncles = []
        gas = 0
        receipts = []
        for tx in txs:
            gas += tx[2] // 2
            receipts.append(_receipt(rng, gas))
        difficulty += rng.randrange(-10**9, 10**9)
        timestamp += rng.randrange(1, 30)
        fields = (
            parent,                                   # parent_hash
            keccak256(rlp.encode(uncles)),            # ommers_hash
            rng.randbytes(20),                        # coinbase
            rng.randbytes(32),                        # state_root
            keccak256(rlp.encode(txs)),               # transactions_root (not a trie root here)
            keccak256(rlp.encode(receipts)),          # receipts_root (ditto)
            _bloom(rng),                              # logs bloom, 256 bytes
            difficulty,
            number,
            gas_limit,
            gas,                                      # gas_used
            timestamp,
            rng.choice([b"Geth/v1.8.27-stable/linux/go1.11", b"ethermine-eu1", b""]),
            rng.randbytes(32),                        # mix_hash
            rng.randbytes(8),                         # nonce
        )
        header = rlp.encode(list(fields))
        td += difficulty
        blocks.append(Block(number, fields, header, rlp.encode([txs, uncles]),
                            rlp.encode(receipts), td))
        parent = keccak256(header)
    return blocks


def accumulator_root(blocks) -> bytes:
    """hash_tree_root(List[HeaderRecord, 8192]) by remerkleable."""
    return bytes(Accumulator(*[HeaderRecord(block_hash=b.hash, total_difficulty=b.td)
                               for b in blocks]).hash_tree_root())


def file_name(network: str, start: int, root: bytes) -> str:
    return f"{network}-{start // EPOCH_SIZE:05d}-{root[:4].hex()}.era1"


def write_era1(out_dir, blocks, network: str = "mainnet", *, accumulator: bytes | None = None,
               name: str | None = None, header_payload: dict | None = None) -> str:
    """Write `blocks` as an era1 file in out_dir and return its path.  `accumulator`: the root
    to store (default: computed from the blocks as given); `name`: the file name (default:
    the correct one); `header_payload`: {block index: raw bytes} written as that block's header
    instead of its RLP (still snappy-framed)."""
    header_payload = header_payload or {}
    root = accumulator_root(blocks) if accumulator is None else accumulator
    out = bytearray(e2store.encode_record(e2store.VERSION, b""))
    positions = []
    for i, b in enumerate(blocks):
        positions.append(len(out))
        out += e2store.encode_record(e2store.COMPRESSED_HEADER,
                                     framing.compress(header_payload.get(i, b.header_rlp)))
        out += e2store.encode_record(e2store.COMPRESSED_BODY, framing.compress(b.body_rlp))
        out += e2store.encode_record(e2store.COMPRESSED_RECEIPTS,
                                     framing.compress(b.receipts_rlp))
        out += e2store.encode_record(e2store.TOTAL_DIFFICULTY, b.td.to_bytes(32, "little"))
    out += e2store.encode_record(e2store.ACCUMULATOR, root)
    index_pos = len(out)
    index = struct.pack("<Q", blocks[0].number)
    index += b"".join(struct.pack("<q", p - index_pos) for p in positions)
    index += struct.pack("<Q", len(blocks))
    out += e2store.encode_record(e2store.BLOCK_INDEX, index)
    path = os.path.join(os.fspath(out_dir), name or file_name(network, blocks[0].number, root))
    with open(path, "wb") as f:
        f.write(out)
    return path
