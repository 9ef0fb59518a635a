"""Pod network addresses (10.128.0.0/14, a /23 per node) and Multus secondary networks (IPAM)."""
import hashlib
import ipaddress
import json

POD_NETWORK = ipaddress.ip_network("10.128.0.0/14")


def node_subnet(node_index):
    base = int(POD_NETWORK.network_address) + node_index * 512
    return ipaddress.ip_network((base, 23))


def node_ip(node_index):
    return f"192.168.126.{10 + node_index}"


def _h(text):
    return int(hashlib.sha1(text.encode()).hexdigest()[:12], 16)


def pick_ip(hosts_first, hosts_count, seed, used):
    """A free address in [hosts_first, hosts_first+hosts_count), stable for a seed."""
    if hosts_count <= 0:
        return None
    start = _h(seed) % hosts_count
    for i in range(hosts_count):
        candidate = str(ipaddress.ip_address(hosts_first + (start + i) % hosts_count))
        if candidate not in used:
            return candidate
    return None


def pod_ip(node_index, seed, used):
    net = node_subnet(node_index)
    # .0 network, .1 gateway (ovn-k style), last broadcast
    return pick_ip(int(net.network_address) + 2, net.num_addresses - 3, seed, used)


def mac_for(seed):
    digest = hashlib.sha1(seed.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def parse_nad_config(nad):
    try:
        return json.loads((nad.get("spec") or {}).get("config") or "{}")
    except ValueError:
        return {}


def _ranges(ipam):
    """[(first_int, count, prefixlen)] usable address ranges from a CNI ipam section."""
    out = []

    def add(subnet, start=None, end=None, exclude=()):
        try:
            net = ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            return
        first = int(ipaddress.ip_address(start)) if start else int(net.network_address) + 1
        last = int(ipaddress.ip_address(end)) if end else int(net.broadcast_address) - 1
        if net.num_addresses <= 2:
            first, last = int(net.network_address), int(net.broadcast_address)
        if last >= first:
            out.append((first, last - first + 1, net.prefixlen))

    t = ipam.get("type")
    if t == "whereabouts":
        rng = ipam.get("range")
        if rng:
            add(rng, ipam.get("range_start"), ipam.get("range_end"))
        for r in ipam.get("ipRanges") or []:
            if r.get("range"):
                add(r["range"], r.get("range_start"), r.get("range_end"))
    elif t == "host-local":
        if ipam.get("subnet"):
            add(ipam["subnet"], ipam.get("rangeStart"), ipam.get("rangeEnd"))
        for rset in ipam.get("ranges") or []:
            for r in rset if isinstance(rset, list) else [rset]:
                if r.get("subnet"):
                    add(r["subnet"], r.get("rangeStart"), r.get("rangeEnd"))
    return out


def multus_addresses(nad, seed, used):
    """IP addresses (no prefix) a secondary interface gets from its NAD's IPAM; [] without IPAM."""
    cfg = parse_nad_config(nad)
    ipam = cfg.get("ipam") or {}
    if not ipam and cfg.get("plugins"):
        for plugin in cfg["plugins"]:
            if plugin.get("ipam"):
                ipam = plugin["ipam"]
                break
    if ipam.get("type") == "static":
        return [a["address"].split("/")[0] for a in ipam.get("addresses") or [] if a.get("address")]
    for first, count, _ in _ranges(ipam):
        ip = pick_ip(first, count, seed, used)
        if ip:
            return [ip]
    return []


def nad_cni_name(nad):
    cfg = parse_nad_config(nad)
    return cfg.get("name") or nad["metadata"]["name"]
