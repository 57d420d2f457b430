"""The Strata server: the persistent GPU server behind the wire protocol.

    main.py          `strata-server`: options, bind policy, signals        loop.py   the ROUTER socket loop
    worker.py        the job thread and its Progress                        store.py  job records on disk
    kinds/           job kinds (body, reconstruct, echo) behind one interface
    models.py        memory figures (the model cache itself is strata.core.cache)
    capabilities.py  what `welcome` says                                    security.py  loopback policy, CURVE
    logs.py          structured logs

The wire protocol and the asset format are strata.exchange (shared with the clients and the add-on);
the CLI and the batch runner are strata.client.
"""
