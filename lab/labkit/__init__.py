"""labkit: the code behind `lab/labctl` (PKI, processes, a tiny API client, the CLI)."""
