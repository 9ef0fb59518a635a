# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Connection options: the same names, environment variables and precedence as kubernetes.core."""

    DOCUMENTATION = r"""
options:
  host:
    description:
      - URL of the Kubernetes API server, for example C(https://api.example.com:6443).
      - Can also be set with the E(K8S_AUTH_HOST) environment variable.
      - With O(api_key) (or O(username) and O(password)) no kubeconfig is read.
      - Without it, the server comes from the kubeconfig (or the in-cluster environment), even when the
        credentials are given explicitly.
    type: str
  api_key:
    description:
      - Bearer token for the API server, for example a ServiceAccount token.
      - Can also be set with the E(K8S_AUTH_API_KEY) environment variable.
      - Explicit credentials (O(api_key), O(username)/O(password), O(client_cert)/O(client_key), as options or
        environment variables) replace the kubeconfig's user entirely - its token, client certificate, exec or
        auth-provider plugin and impersonation are not used - even without O(host); the kubeconfig then gives
        only the server, its CA, TLS and proxy settings and the namespace.
    type: str
  kubeconfig:
    description:
      - Path to a kubeconfig file (several paths separated by V(:) are merged like kubectl does),
        or the kubeconfig itself as a dict.
      - Can also be set with the E(K8S_AUTH_KUBECONFIG) environment variable.
      - Without it and without O(host) and O(api_key), the in-cluster ServiceAccount is tried, then
        E(KUBECONFIG) or C(~/.kube/config).
    type: raw
  context:
    description:
      - The kubeconfig context to use instead of its current context.
      - Can also be set with the E(K8S_AUTH_CONTEXT) environment variable.
    type: str
  username:
    description:
      - User name for HTTP basic authentication (only for clusters that still accept it).
      - Can also be set with the E(K8S_AUTH_USERNAME) environment variable.
    type: str
  password:
    description:
      - Password for HTTP basic authentication.
      - Can also be set with the E(K8S_AUTH_PASSWORD) environment variable.
    type: str
  client_cert:
    description:
      - Path to a client certificate for TLS client authentication.
      - Can also be set with the E(K8S_AUTH_CERT_FILE) environment variable.
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Path to the key of O(client_cert).
      - Can also be set with the E(K8S_AUTH_KEY_FILE) environment variable.
    type: path
    aliases: [key_file]
  ca_cert:
    description:
      - Path to the CA certificate(s) that signed the API server's certificate; the full chain is needed.
      - Can also be set with the E(K8S_AUTH_SSL_CA_CERT) environment variable.
    type: path
    aliases: [ssl_ca_cert]
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate. Verification is on unless this is V(false)
        or the kubeconfig says C(insecure-skip-tls-verify); the module warns when it is off.
      - Can also be set with the E(K8S_AUTH_VERIFY_SSL) environment variable.
    type: bool
    aliases: [verify_ssl]
  proxy:
    description:
      - URL of an HTTP proxy for the API server. Proxy settings in E(HTTPS_PROXY) are not used.
      - Can also be set with the E(K8S_AUTH_PROXY) environment variable.
    type: str
  no_proxy:
    description:
      - Comma-separated hosts, domains and CIDRs reached without O(proxy).
      - Can also be set with the E(K8S_AUTH_NO_PROXY) environment variable.
    type: str
  proxy_headers:
    description:
      - Headers for the HTTP proxy.
    type: dict
    suboptions:
      proxy_basic_auth:
        description:
          - C(username:password) for the proxy. Can also be set with E(K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH).
        type: str
      basic_auth:
        description:
          - C(username:password) basic authentication header. Can also be set with E(K8S_AUTH_PROXY_HEADERS_BASIC_AUTH).
        type: str
      user_agent:
        description:
          - User agent sent to the proxy. Can also be set with E(K8S_AUTH_PROXY_HEADERS_USER_AGENT).
        type: str
  persist_config:
    description:
      - Save refreshed tokens of exec or auth-provider kubeconfig users back to the kubeconfig.
      - Can also be set with the E(K8S_AUTH_PERSIST_CONFIG) environment variable.
    type: bool
  impersonate_user:
    description:
      - User name to act as (the C(Impersonate-User) header).
      - Can also be set with the E(K8S_AUTH_IMPERSONATE_USER) environment variable.
    type: str
  impersonate_groups:
    description:
      - Groups to act as (C(Impersonate-Group) headers).
      - Can also be set with the E(K8S_AUTH_IMPERSONATE_GROUPS) environment variable, for example V(group1,group2).
    type: list
    elements: str
notes:
  - Options and environment variables are those of M(kubernetes.core.k8s), so the AWX credential type
    C(OpenShift or Kubernetes API Bearer Token) works unchanged.
  - Use O(ca_cert) rather than O(validate_certs=false); the full certificate chain must be given.
  - Requests are retried only where that is safe (reads, server-side apply, deletes) on 429, 5xx and
    connection errors, with exponential backoff, at most 6 attempts.
requirements:
  - python >= 3.9
  - urllib3 and PyYAML (the C(kubernetes) Python package brings both; it is used itself only for
    kubeconfig users with C(exec) or C(auth-provider) plugins)
"""
