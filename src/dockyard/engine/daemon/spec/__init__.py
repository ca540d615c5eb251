"""Docker container config -> OCI runtime spec (config.json) for dockyardd."""

from __future__ import annotations

from .build import SpecInput, adapt_host_config, build_spec, cgroup_v2_host, container_hostname
from .mounts import MountPoint, parse_bind, parse_mounts, prepare_bind_sources
from .process import exec_process, merge_image_config, prepare_working_dir, process_spec, replace_or_append_env
from .resources import merge_update, resources_to_oci, update_resources_to_oci, validate_resources
from .seccomp_default import default_profile
from .seccomp_profile import to_oci as seccomp_to_oci
from .security import SecurityOptions, container_capabilities, parse_security_opts
from .users import resolve_user

__all__ = [
    "MountPoint", "SecurityOptions", "SpecInput", "adapt_host_config", "build_spec", "cgroup_v2_host",
    "container_capabilities", "container_hostname", "default_profile", "exec_process", "merge_image_config", "parse_bind",
    "parse_mounts", "parse_security_opts", "prepare_bind_sources", "prepare_working_dir", "process_spec", "replace_or_append_env",
    "merge_update", "resolve_user", "resources_to_oci", "update_resources_to_oci", "seccomp_to_oci", "validate_resources",
]
