"""TrustedRoots (era_tools.sync.trusted): the roots a long pull checks blocks against,
from the fixture chain's finalized state and era states, against the fixture's own roots."""

from __future__ import annotations

import pytest

from beacon_api_server import FixtureChain
from era_tools.errors import FormatError, VerificationError
from era_tools.ssz.layout import state_prefix_size
from era_tools.sync.trusted import TrustedRoots

SPHR = 64


@pytest.fixture(scope="module")
def chain(fixture_dir):
    return FixtureChain(fixture_dir)


def state(chain, slot: int) -> bytes:
    return chain.state_ssz(slot)[1]


def trusted_at(chain, network, slot: int) -> TrustedRoots:
    return TrustedRoots.from_finalized_state(state(chain, slot), network, slot,
                                             bytes.fromhex(chain.root_at(slot)[2:]), "fin")


def test_every_root_below_the_finalized_state_is_the_fixtures(chain, network):
    t = trusted_at(chain, network, 1024)
    for slot in range(1024 - SPHR, 1025):  # the state's own window, and its slot
        assert t.era_needed(slot) is None
        assert "0x" + t.root_at(slot).hex() == chain.root_at(slot)
    assert t.root_at(1025) is None
    for era in range(1, 1024 // SPHR):  # older eras: once their boundary state is added
        first = (era - 1) * SPHR
        assert t.era_needed(first) == era and t.root_at(first) is None
        t.add_era_state(state(chain, era * SPHR)[:state_prefix_size(SPHR)], f"era {era}")
        for slot in range(first, era * SPHR):
            assert "0x" + t.root_at(slot).hex() == chain.root_at(slot), slot
    assert len(t.eras) == 2  # only the newest eras are kept


def test_block_summary_roots_are_the_era_states_block_roots_roots(chain, network):
    from era_tools.hashing import merkleize

    t = trusted_at(chain, network, 1024)
    for era in range(1, 1024 // SPHR + 1):  # every era of the fixture is after Capella
        head = state(chain, era * SPHR)[176:176 + 32 * SPHR]
        assert t.block_summary_root(era) == merkleize(head), era
    assert t.block_summary_root(1024 // SPHR + 1) is None  # not in the state yet


def test_a_state_of_another_block_or_slot_is_refused(chain, network):
    data = state(chain, 1024)
    with pytest.raises(VerificationError, match=r"fin: the state at slot 1024 .* belongs to "
                       r"block 0x.*, not to the finalized checkpoint 0x5555"):
        TrustedRoots.from_finalized_state(data, network, 1024, b"\x55" * 32, "fin")
    with pytest.raises(VerificationError, match="fin: the finalized state has slot 1024, not "
                       "the checkpoint's 960"):
        TrustedRoots.from_finalized_state(data, network, 960, b"\x55" * 32, "fin")
    with pytest.raises(FormatError, match="fin: "):
        TrustedRoots.from_finalized_state(data[:1000], network, 1024, b"\x55" * 32, "fin")


def test_an_era_state_that_does_not_hash_to_its_historical_root_is_refused(chain, network):
    t = trusted_at(chain, network, 1024)
    era5 = bytearray(state(chain, 5 * SPHR)[:state_prefix_size(SPHR)])
    era5[176 + 32 * 7] ^= 1  # one bit of block_roots[7]
    with pytest.raises(VerificationError, match="s5: era 5's block_roots and state_roots hash "
                       "to 0x.*historical root of that era is 0x"):
        t.add_era_state(bytes(era5), "s5")
    assert t.era_needed(4 * SPHR) == 5  # nothing was trusted
    with pytest.raises(FormatError, match="not an era boundary"):
        t.add_era_state(state(chain, 1024)[:state_prefix_size(SPHR)].replace(
            (1024).to_bytes(8, "little"), (1000).to_bytes(8, "little"), 1), "s")


def test_a_state_after_empty_slots_is_bound_only_by_its_header_so_it_is_refused(chain, network):
    """The state at slot 128 follows its block by an empty slot: its latest_block_header
    hashes to the finalized root whatever the rest of it holds, so its roots prove nothing;
    the state at the block's own slot is needed."""
    data = state(chain, 128)
    block_slot = TrustedRoots.block_slot(data, "s128")
    assert block_slot is not None and block_slot < 128
    assert chain.root_at(block_slot) == chain.root_at(128)
    with pytest.raises(VerificationError, match=rf"s128: the state at slot 128 follows its "
                       rf"block \(slot {block_slot}\) by empty slots"):
        TrustedRoots.from_finalized_state(data, network, 128,
                                          bytes.fromhex(chain.root_at(128)[2:]), "s128")
    assert TrustedRoots.block_slot(state(chain, 1024), "s1024") is None  # a post-block state


def test_the_roots_above_the_block_up_to_the_finalized_slot_are_its_root(chain, network):
    root = bytes.fromhex(chain.root_at(64)[2:])
    t = TrustedRoots.from_finalized_state(state(chain, 64), network, 64, root, "s64", top=70)
    assert [t.root_at(s) for s in (64, 67, 70)] == [root] * 3
    assert t.root_at(71) is None and t.state_root_at(65) is None
    assert "0x" + t.root_at(63).hex() == chain.root_at(63)
