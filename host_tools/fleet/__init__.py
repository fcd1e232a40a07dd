"""Fleets on Flower (docs/FLEET.md): one Flower ClientApp per board, each training with Octo's engine over the
board's serial link (the TRAIN_* service), a ServerApp with Flower's own strategies, low-bit compressed updates.

- ``codec``: global weights <-> the state blob (SET/COMMIT weights), 8/4/3/2-bit deltas with a per-tensor scale;
- ``data``: non-IID partitions (Dirichlet over classes, IID, one group per client), deterministic per seed;
- ``local``: one round on one board: write the global model, train the local epochs, read the weights back;
- ``apps``: the Flower ClientApp / ServerApp and the compressed strategy wrapper;
- ``sim``: `octo fleet sim` (Flower's simulation engine, Ray backend);
- ``deploy``: `octo fleet run` / `octo fleet supernode`: Flower's SuperLink and SuperNodes as processes, TLS
  certificates and SuperNode keys, boards, faults (no flwr import: Flower runs in its own processes);
- ``deploy_apps``: the ClientApp / ServerApp of deployment mode, loaded by Flower's processes;
- ``split``: split learning on Flower (`octo collab --engine flower`): the cloud in a ServerApp, COLLAB exchanges as
  Flower messages.

flwr (and Ray) are imported only inside ``apps``, ``deploy_apps``, ``split`` and ``sim``, so `octo --help` stays
instant.
"""
