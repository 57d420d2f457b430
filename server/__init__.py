"""The Strata server side: the persistent GPU server, its one Python client, and the `strata` CLI.

    client.py        the client (vendored by the Blender add-on: zmq/msgpack/numpy + core only)
    main.py          `strata-server`: options, bind policy, signals        loop.py   the ROUTER socket loop
    worker.py        the job thread and its Progress                        store.py  job records on disk
    kinds/           job kinds (body, reconstruct, echo) behind one interface
    models.py        the warm-model cache and memory figures                capabilities.py  what `welcome` says
    security.py      loopback policy and CURVE keys                         logs.py   structured logs
    cli.py           `strata`, with outputs.py (formats) and progress_bar.py

The wire protocol itself is core/wire (shared with the add-on) and docs/protocol.md.
"""
