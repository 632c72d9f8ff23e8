"""Networks, presets and fork schedules.

A `Network` answers: which fork is slot S in, which fork version signs epoch E, which preset
sizes the SSZ types.  Built-in networks, client `config.yaml` files and a beacon node's
`/eth/v1/config/spec` JSON all load into the same shape.  Knows nothing of files or I/O beyond
reading a config file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Iterable

from .errors import ConfigError

FORKS = ("phase0", "altair", "bellatrix", "capella", "deneb", "electra", "fulu")
FAR_FUTURE_EPOCH = 2**64 - 1

# Preset constants that size SSZ types.  Values from ethereum/consensus-specs presets/*/.
_MAINNET_PRESET = dict(
    SLOTS_PER_EPOCH=32,
    SLOTS_PER_HISTORICAL_ROOT=8192,
    EPOCHS_PER_HISTORICAL_VECTOR=65536,
    EPOCHS_PER_SLASHINGS_VECTOR=8192,
    EPOCHS_PER_ETH1_VOTING_PERIOD=64,
    HISTORICAL_ROOTS_LIMIT=2**24,
    VALIDATOR_REGISTRY_LIMIT=2**40,
    MAX_VALIDATORS_PER_COMMITTEE=2048,
    MAX_PROPOSER_SLASHINGS=16,
    MAX_ATTESTER_SLASHINGS=2,
    MAX_ATTESTATIONS=128,
    MAX_DEPOSITS=16,
    MAX_VOLUNTARY_EXITS=16,
    DEPOSIT_CONTRACT_TREE_DEPTH=32,
    JUSTIFICATION_BITS_LENGTH=4,
    # altair
    SYNC_COMMITTEE_SIZE=512,
    # bellatrix
    MAX_BYTES_PER_TRANSACTION=2**30,
    MAX_TRANSACTIONS_PER_PAYLOAD=2**20,
    BYTES_PER_LOGS_BLOOM=256,
    MAX_EXTRA_DATA_BYTES=32,
    # capella
    MAX_BLS_TO_EXECUTION_CHANGES=16,
    MAX_WITHDRAWALS_PER_PAYLOAD=16,
    # deneb
    MAX_BLOB_COMMITMENTS_PER_BLOCK=4096,
    FIELD_ELEMENTS_PER_BLOB=4096,
    KZG_COMMITMENT_INCLUSION_PROOF_DEPTH=17,
    # electra
    MAX_ATTESTER_SLASHINGS_ELECTRA=1,
    MAX_ATTESTATIONS_ELECTRA=8,
    MAX_COMMITTEES_PER_SLOT=64,
    PENDING_DEPOSITS_LIMIT=2**27,
    PENDING_PARTIAL_WITHDRAWALS_LIMIT=2**27,
    PENDING_CONSOLIDATIONS_LIMIT=2**18,
    MAX_DEPOSIT_REQUESTS_PER_PAYLOAD=8192,
    MAX_WITHDRAWAL_REQUESTS_PER_PAYLOAD=16,
    MAX_CONSOLIDATION_REQUESTS_PER_PAYLOAD=2,
    # fulu
    MIN_SEED_LOOKAHEAD=1,
    FIELD_ELEMENTS_PER_CELL=64,
    KZG_COMMITMENTS_INCLUSION_PROOF_DEPTH=4,
)

_MINIMAL_PRESET = dict(
    _MAINNET_PRESET,
    SLOTS_PER_EPOCH=8,
    SLOTS_PER_HISTORICAL_ROOT=64,
    EPOCHS_PER_HISTORICAL_VECTOR=64,
    EPOCHS_PER_SLASHINGS_VECTOR=64,
    EPOCHS_PER_ETH1_VOTING_PERIOD=4,
    SYNC_COMMITTEE_SIZE=32,
    MAX_WITHDRAWALS_PER_PAYLOAD=4,
    # MAX_BLOB_COMMITMENTS_PER_BLOCK, MAX_DEPOSIT_REQUESTS_PER_PAYLOAD and
    # MAX_WITHDRAWAL_REQUESTS_PER_PAYLOAD equal mainnet's in the minimal preset since
    # consensus-specs v1.5 (checked against eth-consensus-specs 1.7.0a13).
    MAX_COMMITTEES_PER_SLOT=4,
    PENDING_PARTIAL_WITHDRAWALS_LIMIT=64,
    PENDING_CONSOLIDATIONS_LIMIT=64,
)

# Gnosis chain preset (gnosischain/configs presets/gnosis): mainnet with these differences, the
# only ones that size an SSZ type (also in Lodestar's gnosis preset; tests/test_config.py).
_GNOSIS_PRESET = dict(
    _MAINNET_PRESET,
    SLOTS_PER_EPOCH=16,
    MAX_WITHDRAWALS_PER_PAYLOAD=8,
)

PRESETS = {"mainnet": _MAINNET_PRESET, "minimal": _MINIMAL_PRESET, "gnosis": _GNOSIS_PRESET}


@dataclass(frozen=True)
class Fork:
    name: str
    epoch: int
    version: bytes


@dataclass(frozen=True)
class Network:
    """One chain: its preset, fork schedule and (when known) genesis facts."""

    name: str
    config_name: str
    preset_base: str
    forks: tuple[Fork, ...]  # ascending epoch; forks[0] is phase0 at epoch 0
    genesis_validators_root: bytes | None = None
    genesis_time: int | None = None
    seconds_per_slot: int = 12
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    # --- preset ---------------------------------------------------------------------------
    @property
    def preset(self) -> dict:
        return PRESETS[self.preset_base]

    @property
    def slots_per_epoch(self) -> int:
        return self.preset["SLOTS_PER_EPOCH"]

    @property
    def slots_per_historical_root(self) -> int:
        return self.preset["SLOTS_PER_HISTORICAL_ROOT"]

    # --- fork schedule --------------------------------------------------------------------
    @property
    def genesis_fork_version(self) -> bytes:
        return self.forks[0].version

    def fork_at_epoch(self, epoch: int) -> Fork:
        current = self.forks[0]
        for f in self.forks:
            if f.epoch <= epoch:
                current = f
            else:
                break
        return current

    def fork_at_slot(self, slot: int) -> Fork:
        return self.fork_at_epoch(slot // self.slots_per_epoch)

    def fork_name_at_slot(self, slot: int) -> str:
        return self.fork_at_slot(slot).name

    def fork_by_name(self, name: str) -> Fork:
        for f in self.forks:
            if f.name == name:
                return f
        raise ConfigError(f"network {self.name}: fork {name!r} is not scheduled")

    def fork_by_version(self, version: bytes) -> Fork | None:
        for f in self.forks:
            if f.version == version:
                return f
        return None

    def with_genesis(self, genesis_validators_root: bytes | None = None,
                     genesis_time: int | None = None) -> "Network":
        return replace(
            self,
            genesis_validators_root=genesis_validators_root or self.genesis_validators_root,
            genesis_time=genesis_time if genesis_time is not None else self.genesis_time,
        )

    def to_spec_json(self) -> dict:
        """The `/eth/v1/config/spec` shape (strings), for storing and serving."""
        out = {"CONFIG_NAME": self.config_name, "PRESET_BASE": self.preset_base,
               "SECONDS_PER_SLOT": str(self.seconds_per_slot)}
        for f in self.forks:
            key = "GENESIS" if f.name == "phase0" else f.name.upper()
            out[f"{key}_FORK_VERSION"] = "0x" + f.version.hex()
            if f.name != "phase0":
                out[f"{key}_FORK_EPOCH"] = str(f.epoch)
        for k, v in self.preset.items():
            out[k] = str(v)
        out["DOMAIN_BEACON_PROPOSER"] = "0x00000000"
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out


def _v(h: str) -> bytes:
    return bytes.fromhex(h[2:] if h.startswith("0x") else h)


def _network(name, preset, versions_epochs, gvr=None, genesis_time=None, seconds_per_slot=12,
             config_name=None) -> Network:
    forks = []
    for fork_name, (version, epoch) in zip(FORKS, versions_epochs):
        if epoch is None or epoch >= FAR_FUTURE_EPOCH:
            continue
        forks.append(Fork(fork_name, epoch, _v(version)))
    return Network(name=name, config_name=config_name or name, preset_base=preset,
                   forks=tuple(forks), genesis_validators_root=_v(gvr) if gvr else None,
                   genesis_time=genesis_time, seconds_per_slot=seconds_per_slot)


_F = FAR_FUTURE_EPOCH

BUILTIN: dict[str, Network] = {
    "mainnet": _network(
        "mainnet", "mainnet",
        [("0x00000000", 0), ("0x01000000", 74240), ("0x02000000", 144896),
         ("0x03000000", 194048), ("0x04000000", 269568), ("0x05000000", 364032),
         ("0x06000000", 411392)],
        gvr="0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95",
        genesis_time=1606824023),
    "sepolia": _network(
        "sepolia", "mainnet",
        [("0x90000069", 0), ("0x90000070", 50), ("0x90000071", 100), ("0x90000072", 56832),
         ("0x90000073", 132608), ("0x90000074", 222464), ("0x90000075", 272640)],
        gvr="0xd8ea171f3c94aea21ebc42a1ed61052acf3f9209c00e4efbaaddac09ed9b8078",
        genesis_time=1655733600),
    "holesky": _network(
        "holesky", "mainnet",
        [("0x01017000", 0), ("0x02017000", 0), ("0x03017000", 0), ("0x04017000", 256),
         ("0x05017000", 29696), ("0x06017000", 115968), ("0x07017000", 165120)],
        gvr="0x9143aa7c615a7f7115e2b6aac319c03529df8242ae705fba9df39b79c59fa8b1",
        genesis_time=1695902400),
    "hoodi": _network(
        "hoodi", "mainnet",
        [("0x10000910", 0), ("0x20000910", 0), ("0x30000910", 0), ("0x40000910", 0),
         ("0x50000910", 0), ("0x60000910", 2048), ("0x70000910", 50688)],
        gvr="0x212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f",
        genesis_time=1742213400),
    "gnosis": _network(
        "gnosis", "gnosis",
        [("0x00000064", 0), ("0x01000064", 512), ("0x02000064", 385536),
         ("0x03000064", 648704), ("0x04000064", 889856), ("0x05000064", 1337856),
         ("0x06000064", _F)],
        gvr="0xf5dcb5564e829aab27264b9becd5dfaa017085611224cb3036f573368dbb9d47",
        genesis_time=1638993340, seconds_per_slot=5),
    # The consensus-specs minimal config: every fork after phase0 is unscheduled.  Real minimal
    # chains (like the fixture) bring their own schedule through --config or a file beside the eras.
    "minimal": _network(
        "minimal", "minimal",
        [("0x00000001", 0), ("0x01000001", _F), ("0x02000001", _F), ("0x03000001", _F),
         ("0x04000001", _F), ("0x05000001", _F), ("0x06000001", _F)],
        seconds_per_slot=6),
}

# Old names some clients still publish in their spec endpoint.
_FORK_KEY_ALIASES = {"EIP4844": "DENEB", "EIP7594": "FULU"}


def get_network(name: str) -> Network:
    try:
        return BUILTIN[name]
    except KeyError:
        raise ConfigError(
            f"unknown network {name!r}; built in: {', '.join(sorted(BUILTIN))}") from None


def _normalized_spec(spec: dict) -> dict:
    """A config mapping with string keys, unwrapped from a `data` envelope, old fork names
    aliased to the current ones."""
    if "data" in spec and isinstance(spec["data"], dict):
        spec = spec["data"]
    spec = {str(k): v for k, v in spec.items()}
    for old, new in _FORK_KEY_ALIASES.items():
        for suffix in ("_FORK_VERSION", "_FORK_EPOCH"):
            if old + suffix in spec and new + suffix not in spec:
                spec[new + suffix] = spec[old + suffix]
    return spec


def network_from_spec(spec: dict, name: str | None = None,
                      genesis: dict | None = None) -> Network:
    """Build a Network from a config.yaml mapping or `/eth/v1/config/spec` JSON (`data` or flat)."""
    spec = _normalized_spec(spec)
    preset = str(spec.get("PRESET_BASE", "mainnet")).strip("'\"")
    if preset not in PRESETS:
        raise ConfigError(f"config: unknown PRESET_BASE {preset!r}")
    config_name = str(spec.get("CONFIG_NAME", name or preset)).strip("'\"")

    def ver(key):
        val = spec.get(key)
        if val is None:
            return None
        if isinstance(val, int):  # YAML may parse 0x00000000 as an int
            if not 0 <= val < 1 << 32:
                raise ConfigError(f"config: {key} must be 4 bytes, got {val!r:.80}")
            return val.to_bytes(4, "big")
        try:
            b = _v(str(val).strip("'\""))
        except ValueError:
            raise ConfigError(f"config: {key} is not hex: {val!r}") from None
        if len(b) != 4:
            raise ConfigError(f"config: {key} must be 4 bytes, got {val!r}")
        return b

    gfv = ver("GENESIS_FORK_VERSION")
    if gfv is None:
        raise ConfigError("config: GENESIS_FORK_VERSION missing")
    forks = [Fork("phase0", 0, gfv)]
    for fork_name in FORKS[1:]:
        v, e = ver(f"{fork_name.upper()}_FORK_VERSION"), spec.get(f"{fork_name.upper()}_FORK_EPOCH")
        if v is None or e is None:
            break
        try:
            epoch = int(e)
        except (TypeError, ValueError, OverflowError):  # OverflowError: YAML's .inf
            raise ConfigError(f"config: {fork_name.upper()}_FORK_EPOCH is not an integer") from None
        if epoch >= FAR_FUTURE_EPOCH:
            break
        if epoch < forks[-1].epoch:
            raise ConfigError(f"config: {fork_name} epoch {epoch} precedes {forks[-1].name}")
        forks.append(Fork(fork_name, epoch, v))

    def num(key):
        try:
            return int(spec[key])
        except (TypeError, ValueError, OverflowError):  # OverflowError: YAML's .inf
            raise ConfigError(f"config: {key} is not an integer: {spec[key]!r}") from None

    for key in ("SLOTS_PER_EPOCH", "SLOTS_PER_HISTORICAL_ROOT"):
        if key in spec and num(key) != PRESETS[preset][key]:
            raise ConfigError(f"config: {key}={spec[key]} does not match preset {preset}")
    if "SECONDS_PER_SLOT" in spec:
        sps = num("SECONDS_PER_SLOT")
    elif "SLOT_DURATION_MS" in spec:
        sps = max(1, num("SLOT_DURATION_MS") // 1000)
    else:
        sps = 12
    gvr = gtime = None
    if genesis:
        g = genesis.get("data", genesis) if isinstance(genesis, dict) else genesis
        if not isinstance(g, dict):
            raise ConfigError("genesis: not a mapping")
        root, gtime = g.get("genesis_validators_root"), g.get("genesis_time")
        try:
            gvr = _v(str(root)) if root else None
        except ValueError:
            gvr = b""
        if gvr is not None and len(gvr) != 32:
            raise ConfigError(f"genesis: genesis_validators_root {root!r} is not 32 bytes of hex")
        try:
            gtime = None if gtime is None else int(gtime)
        except (TypeError, ValueError, OverflowError):  # OverflowError: YAML's .inf
            raise ConfigError(f"genesis: genesis_time {gtime!r} is not an integer") from None
    builtin = BUILTIN.get(config_name)
    if gvr is None and builtin is not None and builtin.forks == tuple(forks):
        gvr = builtin.genesis_validators_root
    return Network(name=name or config_name, config_name=config_name, preset_base=preset,
                   forks=tuple(forks), genesis_validators_root=gvr, genesis_time=gtime,
                   seconds_per_slot=sps)


# The fork whose types a preset value first sizes (the groups of _MAINNET_PRESET): a value
# matters for a network once that fork is scheduled.
_PRESET_FORK = {k: "phase0" for k in _MAINNET_PRESET}
_PRESET_FORK.update(dict.fromkeys(("SYNC_COMMITTEE_SIZE",), "altair"))
_PRESET_FORK.update(dict.fromkeys(("MAX_BYTES_PER_TRANSACTION", "MAX_TRANSACTIONS_PER_PAYLOAD",
                                   "BYTES_PER_LOGS_BLOOM", "MAX_EXTRA_DATA_BYTES"), "bellatrix"))
_PRESET_FORK.update(dict.fromkeys(("MAX_BLS_TO_EXECUTION_CHANGES",
                                   "MAX_WITHDRAWALS_PER_PAYLOAD"), "capella"))
_PRESET_FORK.update(dict.fromkeys(("MAX_BLOB_COMMITMENTS_PER_BLOCK", "FIELD_ELEMENTS_PER_BLOB",
                                   "KZG_COMMITMENT_INCLUSION_PROOF_DEPTH"), "deneb"))
_PRESET_FORK.update(dict.fromkeys((
    "MAX_ATTESTER_SLASHINGS_ELECTRA", "MAX_ATTESTATIONS_ELECTRA", "PENDING_DEPOSITS_LIMIT", "PENDING_PARTIAL_WITHDRAWALS_LIMIT",
    "PENDING_CONSOLIDATIONS_LIMIT", "MAX_DEPOSIT_REQUESTS_PER_PAYLOAD",
    "MAX_WITHDRAWAL_REQUESTS_PER_PAYLOAD", "MAX_CONSOLIDATION_REQUESTS_PER_PAYLOAD"), "electra"))
_PRESET_FORK.update(dict.fromkeys(("MIN_SEED_LOOKAHEAD", "FIELD_ELEMENTS_PER_CELL",
                                   "KZG_COMMITMENTS_INCLUSION_PROOF_DEPTH"), "fulu"))


def spec_mismatch(expected: Network, spec: dict) -> tuple[str, str, str] | None:
    """The first key where a beacon node's `/eth/v1/config/spec` (`data` or flat) contradicts
    `expected`: (key, expected value, the node's value), or None when they agree.

    Compared: PRESET_BASE, the genesis fork version, every fork's epoch (an unscheduled fork,
    or a key the node does not publish, counts as FAR_FUTURE_EPOCH) and, for forks both
    schedule, its version; then the preset values that size the types of the scheduled forks
    (keys the node does not publish are not compared)."""
    spec = _normalized_spec(spec)

    def text(v) -> str:
        return str(v).strip("'\"").lower()

    def version(v) -> str:
        if isinstance(v, int) and 0 <= v < 1 << 32:  # YAML may parse 0x00000000 as an int
            return "0x" + v.to_bytes(4, "big").hex()
        return text(v)

    preset = text(spec.get("PRESET_BASE", expected.preset_base))
    if preset != expected.preset_base:
        return "PRESET_BASE", expected.preset_base, preset
    if "GENESIS_FORK_VERSION" in spec and \
            version(spec["GENESIS_FORK_VERSION"]) != hex_version(expected.genesis_fork_version):
        return ("GENESIS_FORK_VERSION", hex_version(expected.genesis_fork_version),
                version(spec["GENESIS_FORK_VERSION"]))
    scheduled = {f.name: f for f in expected.forks}
    for name in FORKS[1:]:
        key = name.upper()
        want = scheduled[name].epoch if name in scheduled else FAR_FUTURE_EPOCH
        raw = spec.get(f"{key}_FORK_EPOCH")
        try:
            got = FAR_FUTURE_EPOCH if raw is None else int(raw)
        except (TypeError, ValueError, OverflowError):  # OverflowError: YAML's .inf
            return f"{key}_FORK_EPOCH", str(want), text(raw)
        if got != want:
            return f"{key}_FORK_EPOCH", str(want), str(got)
        if name in scheduled and f"{key}_FORK_VERSION" in spec and \
                version(spec[f"{key}_FORK_VERSION"]) != hex_version(scheduled[name].version):
            return (f"{key}_FORK_VERSION", hex_version(scheduled[name].version),
                    version(spec[f"{key}_FORK_VERSION"]))
    for key, want in expected.preset.items():
        if _PRESET_FORK.get(key, "phase0") in scheduled and key in spec and \
                text(spec[key]) != str(want):
            return key, str(want), text(spec[key])
    return None


def hex_version(v: bytes) -> str:
    return "0x" + v.hex()


def load_config(path: str | os.PathLike) -> Network:
    """Load a client `config.yaml` or a `/eth/v1/config/spec` JSON file.

    A `genesis.json` (the `/eth/v1/beacon/genesis` answer) in the same directory supplies
    `genesis_validators_root`.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    try:
        if path.endswith(".json"):
            from . import safejson

            spec = safejson.loads(raw)
        else:
            spec = _load_yaml(raw)
    except Exception as exc:  # json/yaml errors have no common base
        mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
        why = (f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark and problem
               else " ".join(str(exc).split()))  # yaml's own messages span lines
        raise ConfigError(f"{path}: not a valid config file: {why}") from exc
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: config is not a mapping")
    genesis = None
    gpath = os.path.join(os.path.dirname(path), "genesis.json")
    if os.path.exists(gpath):
        try:
            from . import safejson

            with open(gpath, "rb") as f:
                genesis = safejson.loads(f.read())
        except (OSError, ValueError, RecursionError) as exc:
            raise ConfigError(f"{gpath}: not a valid genesis file: {exc}") from exc
    try:
        return network_from_spec(spec, genesis=genesis)
    except ConfigError as exc:  # say which file
        where = gpath if str(exc).startswith("genesis:") else path
        raise ConfigError(f"{where}: {exc}") from None


def _load_yaml(raw: bytes):
    """yaml.safe_load without aliases: client configs use none, and `*name` lets a few
    hundred bytes stand for gigabytes once the values are turned into strings (a config.yaml
    comes with mirrored era files)."""
    import yaml  # only for client config.yaml files

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.events.AliasEvent):
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not allowed in a config file",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)

    loader = NoAliasLoader(raw)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


CONFIG_FILE_NAMES = ("config.yaml", "spec.json")


def find_config_beside(paths: Iterable[str | os.PathLike]) -> str | None:
    """A `config.yaml` or `spec.json` in the directory of the given files (or in the directory)."""
    seen = set()
    for p in paths:
        p = os.fspath(p)
        if p.startswith("s3://"):  # a bucket prefix: a local copy of its config files
            from . import objstore

            d = p if not p.endswith((".era", ".era1")) else objstore.dirname(p)
            if d not in seen:
                seen.add(d)
                local = objstore.config_beside(d, CONFIG_FILE_NAMES, ("genesis.json",))
                if local:
                    return local
            continue
        d = p if os.path.isdir(p) else os.path.dirname(os.path.abspath(p))
        if d in seen:
            continue
        seen.add(d)
        for n in CONFIG_FILE_NAMES:
            c = os.path.join(d, n)
            if os.path.isfile(c):
                return c
    return None


def network_from_era_name(filename: str) -> Network | None:
    """A built-in network whose CONFIG_NAME starts the era file name, if any."""
    base = os.path.basename(filename)
    config_name = base.rsplit("-", 2)[0] if base.count("-") >= 2 else None
    if config_name in BUILTIN and config_name != "minimal":
        return BUILTIN[config_name]
    return None


def resolve_network(network: str | None = None, config: str | None = None,
                    paths: Iterable[str | os.PathLike] = ()) -> tuple[Network, str]:
    """Pick the network for a command: --config, --network, a config beside the files, or
    the era file names.  Returns (network, how it was chosen)."""
    if config and network:
        raise ConfigError("give --network or --config, not both")
    if config:
        return load_config(config), f"config {config}"
    if network:
        return get_network(network), f"--network {network}"
    paths = list(paths)
    beside = find_config_beside(paths)
    if beside:
        shown = beside
        if any(os.fspath(p).startswith("s3://") for p in paths):
            from .objstore import CONFIG_ORIGIN

            shown = CONFIG_ORIGIN.get(beside, beside)
        return load_config(beside), f"config {shown}"
    names = set()
    for p in paths:
        p = os.fspath(p)
        if p.startswith("s3://"):
            from .era import era_files_in

            files = era_files_in([p])
        else:
            files = ([os.path.join(p, n) for n in sorted(os.listdir(p))] if os.path.isdir(p)
                     else [p])
        for fp in files:
            n = network_from_era_name(fp)
            if n is not None:
                names.add(n.name)
    if len(names) == 1:
        name = names.pop()
        return BUILTIN[name], f"inferred from file names ({name})"
    if len(names) > 1:
        raise ConfigError(f"files name several networks ({', '.join(sorted(names))}); "
                          "pass --network or --config")
    raise ConfigError("cannot infer the network: pass --network NAME or --config FILE")
