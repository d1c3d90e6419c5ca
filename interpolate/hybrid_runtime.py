"""Code every hybrid config carries: its source text is embedded in the hybrid, never imported.

It runs inside the hybrid's private module `_cb` (a module object, so nothing here becomes a config
setting). `make_construction` wraps the base's per-epoch networks: for each epoch it takes the network
the base's own pretraining gives, sets the donor's values on the switched paths, and sets the
`#config` overrides and a `#info` stage marker that reproduces the chosen network-rebuild schedule.
"""

import copy

DELETE = "<config-bisect: delete>"


def set_path(net, path, value):
    """Set (or delete) `net[path[0]][path[1]]...`; nothing to do when another switched value removed the
    parent in this epoch (e.g. a layer that the donor's pretraining has not grown yet)."""
    node = net
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        node = node[key]
    if value == DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = copy.deepcopy(value)


def network_for_epoch(base_net, epoch, overrides):
    """The base network of `epoch` with the donor values of the switched paths for that epoch."""
    net = copy.deepcopy({k: v for k, v in base_net.items() if k not in ("#config", "#info", "#repetition")})
    for epochs, path, value in overrides:
        if epochs is None or epoch in epochs:
            set_path(net, path, value)
    return net


def make_construction(base_pretrain, base_network, num_pretrain, overrides, config_table, stage_of_epoch):
    """A pretrain `construction_algo` giving epochs 1..num_pretrain (the last one is the final network)."""

    def construction(idx, net_dict):
        epoch = idx + 1
        if epoch >= num_pretrain:
            return None
        base_net = base_pretrain.get_network_json_for_epoch(epoch) if base_pretrain else base_network
        net = network_for_epoch(base_net, epoch, overrides)
        if epoch in config_table:
            net["#config"] = dict(config_table[epoch])
        if stage_of_epoch.get(epoch) is not None:  # None: the same stage as the final network
            net["#info"] = {"config_bisect_stage": stage_of_epoch[epoch]}
        return net

    return construction
