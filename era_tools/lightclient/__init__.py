"""The light client: trust one block root, verify everything after it by sync-committee
signatures (consensus-specs `specs/altair/light-client/sync-protocol.md` and the capella,
deneb and electra changes).

- `protocol`: the spec's store and functions (`validate_light_client_update`,
  `process_light_client_update`, `is_better_update`, ...), pure: bytes and SSZ objects in,
  verdicts out; no HTTP, no clock.
- `driver`: fetches bootstraps and updates from several beacon nodes (through
  `era_tools.sync.peers`, the only HTTP client) and feeds them to the store, as geth's blsync
  does: no server is trusted, a server that serves a provably wrong update is dropped.

Neither prints: the `era lightclient` command (cli/lightclient.py) does.
"""
