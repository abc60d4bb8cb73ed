"""squid 5.7's configuration reader (``src/cache_cf.cc``), for ``squid -k parse``.

The preprocessor is ``parseOneConfigFile`` line for line: ``fgets`` lines, the ``\\n`` and the
first ``\\r`` cut, leading white space stripped, ``#`` lines and empty lines skipped (also in
the middle of a continued line), a trailing ``\\`` continues the line (the next line's leading
white space dropped), trailing white space trimmed, the macros ``${service_name}``,
``${process_name}`` (both ``squid``) and ``${process_number}`` (``0`` in ``-k parse``)
substituted, then the line is logged (``Processing: LINE``) and ``if``/``else``/``endif``
(``EvalBoolExpr``: ``true``, ``false``, ``N = M``), ``include`` (``glob`` of each word, all
globs before any file is read, depth up to 16) or a directive is handled.

A directive name unknown to squid 5.7 (the ``NAME:`` lines of its ``cf.data.pre``, aliases
included) is reported ``FILE(LINE): unrecognized: 'NAME'`` and counted: ``squid -k parse``
exits with that count. Of the known directives, the values of those the default Debian
configuration and its ordinary edits use are checked as squid does (``squid.DIRECTIVES``);
any other directive, and any value form not listed there, defers the whole command with the
directive named (squid checks hundreds of value syntaxes; an echo that accepted them all
would answer "valid" for a configuration squid refuses). A bad value ends the run as squid's
``self_destruct`` does: ``FATAL: Bungled FILE line N: PHYSICAL-LINE``.

Pipes (``include !cmd``, a configuration file named ``|cmd``) would run image code: deferred.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field

from nuwa.script.context import Defer

#: every directive name squid 5.7 knows (cf.data.pre's NAME: lines, aliases included)
KNOWN = frozenset((
    "accept_filter access_log acl acl_uses_indirect_client adaptation_access "
    "adaptation_masterx_shared_names adaptation_meta adaptation_send_client_ip adaptation_send_username "
    "adaptation_service_chain adaptation_service_iteration_limit adaptation_service_set "
    "adaptation_uses_indirect_client adapted_http_access allow_underscore always_direct announce_file "
    "announce_host announce_period announce_port append_domain as_whois_server ascii_port auth_param "
    "auth_schemes authenticate_cache_garbage_interval authenticate_ip_ttl authenticate_ttl "
    "background_ping_rate balance_on_multiple_ip broken_posts broken_vary_encoding buffered_logs cache "
    "cache_access_log cache_dir cache_effective_group cache_effective_user cache_host_domain cache_log "
    "cache_mem cache_mgr cache_miss_revalidate cache_peer cache_peer_access cache_peer_domain "
    "cache_replacement_policy cache_store_log cache_swap_high cache_swap_log cache_swap_low "
    "cache_swap_state cache_vary cachemgr_passwd check_hostnames chroot chunked_request_body_max_size "
    "client_db client_delay_access client_delay_initial_bucket_level client_delay_parameters "
    "client_delay_pools client_dst_passthru client_idle_pconn_timeout client_ip_max_connections "
    "client_lifetime client_netmask client_persistent_connections client_request_buffer_max_size "
    "clientside_mark clientside_tos collapsed_forwarding collapsed_forwarding_access "
    "collapsed_forwarding_shared_entries_limit configuration_includes_quoted_values connect_retries "
    "connect_timeout coredump_dir cpu_affinity_map dead_peer_timeout debug_options delay_access "
    "delay_class delay_initial_bucket_level delay_parameters delay_pool_uses_indirect_client delay_pools "
    "deny_info detect_broken_pconn digest_bits_per_entry digest_generation "
    "digest_rebuild_chunk_percentage digest_rebuild_period digest_rewrite_period "
    "digest_swapout_chunk_size diskd_program dns_defnames dns_multicast_local dns_nameservers "
    "dns_packet_max dns_retransmit_interval dns_testnames dns_timeout dns_v4_fallback dns_v4_first "
    "ecap_enable ecap_service email_err_data emulate_httpd_log err_html_text err_page_stylesheet "
    "error_default_language error_directory error_log_languages error_map esi_parser eui_lookup "
    "extension_methods external_acl_type external_refresh_check follow_x_forwarded_for "
    "force_request_body_continuation forward_log forward_max_tries forward_timeout forwarded_for "
    "fqdncache_size ftp_client_idle_timeout ftp_eprt ftp_epsv ftp_epsv_all ftp_list_width ftp_passive "
    "ftp_port ftp_sanitycheck ftp_telnet_protocol ftp_user global_internal_static half_closed_clients "
    "happy_eyeballs_connect_gap happy_eyeballs_connect_limit happy_eyeballs_connect_timeout header_access "
    "header_replace hierarchy_stoplist high_memory_warning high_page_fault_warning "
    "high_response_time_warning hopeless_kid_revival_delay host_verify_strict hostname_aliases hosts_file "
    "htcp_access htcp_clr_access htcp_port http_accel_surrogate_remote http_access http_access2 http_port "
    "http_reply_access http_upgrade_request_protocols httpd_accel_no_pmtu_disc httpd_accel_surrogate_id "
    "httpd_suppress_version_string https_port icap_206_enable icap_access icap_class "
    "icap_client_username_encode icap_client_username_header icap_connect_timeout "
    "icap_default_options_ttl icap_enable icap_io_timeout icap_log icap_persistent_connections "
    "icap_preview_enable icap_preview_size icap_retry icap_retry_limit icap_send_client_ip "
    "icap_send_client_username icap_service icap_service_failure_limit icap_service_revival_delay "
    "icap_uses_indirect_client icon_directory icp_access icp_hit_stale icp_port icp_query_timeout "
    "ident_lookup_access ident_timeout ie_refresh ignore_expect_100 ignore_ims_on_miss "
    "ignore_unknown_nameservers incoming_dns_average incoming_http_average incoming_icp_average "
    "incoming_rate incoming_tcp_average incoming_udp_average ipcache_high ipcache_low ipcache_size "
    "loadable_modules location_rewrite_access location_rewrite_children location_rewrite_concurrency "
    "location_rewrite_program log_access log_fqdn log_icap log_icp_queries log_ip_on_direct log_mime_hdrs "
    "log_uses_indirect_client logfile_daemon logfile_rotate logformat mail_from mail_program "
    "mark_client_connection mark_client_packet max_filedesc max_filedescriptors max_open_disk_fds "
    "max_stale maximum_icp_query_timeout maximum_object_size maximum_object_size_in_memory "
    "maximum_single_addr_tries mcast_groups mcast_icp_query_timeout mcast_miss_addr mcast_miss_encode_key "
    "mcast_miss_port mcast_miss_ttl memory_cache_mode memory_cache_shared memory_pools memory_pools_limit "
    "memory_replacement_policy mime_table min_dns_poll_cnt min_http_poll_cnt min_icp_poll_cnt "
    "min_tcp_poll_cnt min_udp_poll_cnt minimum_direct_hops minimum_direct_rtt minimum_expiry_time "
    "minimum_icp_query_timeout minimum_object_size miss_access negative_dns_ttl negative_ttl "
    "neighbor_type_domain netdb_filename netdb_high netdb_low netdb_ping_period never_direct no_cache "
    "nonhierarchical_direct note offline_mode on_unsupported_protocol pconn_lifetime pconn_timeout "
    "peer_connect_timeout persistent_connection_after_error persistent_request_timeout pid_filename "
    "pinger_enable pinger_program pipeline_prefetch positive_dns_ttl prefer_direct proxy_protocol_access "
    "qos_flows query_icmp quick_abort_max quick_abort_min quick_abort_pct range_offset_limit "
    "read_ahead_gap read_timeout redirect_children redirect_program redirect_rewrites_host_header "
    "redirector_access redirector_bypass referer_log referrer_log refresh_all_ims refresh_pattern "
    "refresh_stale_hit relaxed_header_parser reload_into_ims reply_body_max_size reply_header_access "
    "reply_header_add reply_header_max_size reply_header_replace request_body_max_size request_entities "
    "request_header_access request_header_add request_header_max_size request_header_replace "
    "request_start_timeout request_timeout response_delay_pool response_delay_pool_access retry_on_error "
    "send_hit server_http11 server_idle_pconn_timeout server_pconn_for_nonretriable "
    "server_persistent_connections shared_memory_locking shared_transient_entries_limit short_icon_urls "
    "shutdown_lifetime sleep_after_fork snmp_access snmp_incoming_address snmp_outgoing_address snmp_port "
    "spoof_client_ip ssl_bump ssl_engine ssl_unclean_shutdown sslcrtd_children sslcrtd_program "
    "sslcrtvalidator_children sslcrtvalidator_program sslpassword_program sslproxy_cafile sslproxy_capath "
    "sslproxy_cert_adapt sslproxy_cert_error sslproxy_cert_sign sslproxy_cert_sign_hash sslproxy_cipher "
    "sslproxy_client_certificate sslproxy_client_key sslproxy_flags sslproxy_foreign_intermediate_certs "
    "sslproxy_options sslproxy_session_cache_size sslproxy_session_ttl sslproxy_version stats_collection "
    "store_avg_object_size store_dir_select_algorithm store_id_access store_id_bypass store_id_children "
    "store_id_extras store_id_program store_miss store_objects_per_bucket storeurl_rewrite_access "
    "storeurl_rewrite_bypass storeurl_rewrite_children storeurl_rewrite_program strip_query_terms "
    "tcp_outgoing_address tcp_outgoing_ds tcp_outgoing_dscp tcp_outgoing_mark tcp_outgoing_tos "
    "tcp_recv_bufsize test_reachability tls_outgoing_options tproxy_uses_indirect_client "
    "udp_incoming_address udp_outgoing_address udp_port umask unique_hostname unlinkd_program "
    "update_headers upgrade_http0.9 uri_whitespace url_rewrite_access url_rewrite_bypass "
    "url_rewrite_children url_rewrite_concurrency url_rewrite_extras url_rewrite_host_header "
    "url_rewrite_program url_rewrite_timeout useragent_log vary_ignore_expire via visible_hostname "
    "wais_relay_host wais_relay_port wccp2_address wccp2_assignment_method wccp2_forwarding_method "
    "wccp2_rebuild_wait wccp2_return_method wccp2_router wccp2_service wccp2_service_info wccp2_weight "
    "wccp_address wccp_router wccp_version windows_ipaddrchangemonitor workers write_timeout zero_buffers "
    "zph_local zph_mode zph_option zph_parent zph_sibling"
).split())

#: ACLs squid defines before reading the file (cf.data.pre, ``acl``'s DEFAULT lines): name -> type
PREDEFINED = {"all": "src", "manager": "url_regex", "localhost": "src", "to_localhost": "dst", "CONNECT": "method"}
WS = " \t\n\v\f\r"  # isspace() in the C locale: skip_ws, trim_trailing_ws, strwordtok
_W_SPACE = re.compile(r"[ \t\n\r]+")  # compat_shared.h's w_space: strtok of directive tokens
_ISSPACE = re.compile(r"[ \t\n\v\f\r]+")
_BUFSIZ = 8192
MACROS = (("${service_name}", "squid"), ("${process_name}", "squid"), ("${process_number}", "0"))


class Fatal(Exception):
    """squid's ``fatal()``: the message after ``FATAL: `` (the run ends with status 1)."""


@dataclass
class Config:
    """What the checks after parsing (``configDoConfigure``) need of the configuration."""

    acls: dict[str, str] = field(default_factory=lambda: dict(PREDEFINED))
    nets: dict[str, list] = field(default_factory=dict)
    visible_hostname: str | None = None
    effective_user: str = "proxy"  # @DEFAULT_CACHE_EFFECTIVE_USER@ of Debian's build
    effective_group: str | None = None
    cache_dirs: set = field(default_factory=set)


class Reader:
    """One ``squid -k parse`` reading: ``log`` collects the messages in order (without the
    time stamp), ``errors`` counts the unrecognized lines; :meth:`read` raises :class:`Fatal`.
    A known directive is handed to its check in ``directives`` (deferred without one)."""

    def __init__(self, fs, directives: dict, cwd: str = "/"):
        self.fs = fs
        self.cwd = cwd
        #: directive name -> check(reader, tokens): the value syntaxes modelled (squid.py)
        self.directives = directives
        self.log: list[str] = []
        self.errors = 0
        self.conf = Config()
        # cfg_filename, config_lineno, config_input_line: what a "Bungled" message names
        self.where = ("", 0, "")

    # ---- the preprocessor ------------------------------------------------------------------

    def read(self, name: str, depth: int = 0) -> None:
        """``parseOneConfigFile(name, depth)``."""
        self.log.append(f"Processing Configuration File: {name} (depth {depth})")
        if depth > 16:
            raise Fatal(f"WARNING: can't include {name}: includes are nested too deeply (>16)!\n")
        if name[:1] in ("!", "|"):
            raise Defer(f"squid -k parse: configuration read from a command ({name}) would run image code")
        path = name if name.startswith("/") else posixpath.join(self.cwd, name)
        try:
            # fopen() opens a directory for reading; its first fgets() fails (EISDIR): no lines
            data = b"" if self.fs.stat(path).is_dir else self.fs.read_bytes(path)
        except OSError as e:
            raise Fatal(f"Unable to open configuration file: {name}: {xstrerr(e)}") from None
        saved = self.where
        # bytes pass through unchanged (squid is not locale-aware): undecodable ones as surrogates
        text = data.decode("utf-8", "surrogateescape")
        pending: str | None = None
        if_states: list[bool] = []
        for lineno, raw in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), 1):
            if len(raw.encode("utf-8", "surrogateescape")) >= _BUFSIZ - 1 or "\0" in raw:
                raise Defer(f"squid -k parse: {name} line {lineno} is longer than fgets' buffer or holds a NUL")
            line = raw.split("\r", 1)[0].lstrip(WS)
            self.where = (name, lineno, line)
            if re.match(r"#line [ \t\n\v\f\r]*[+-]?[0-9]", line):
                # a valid "#line N" renames the file and renumbers its lines: not modelled
                raise Defer(f"squid -k parse: a '#line' directive in {name}")
            if not line or line[0] == "#":
                continue
            joined = line if pending is None else pending + line.lstrip(WS)
            if joined.endswith("\\"):
                pending = joined[:-1]
                continue
            pending = None
            joined = joined.rstrip(WS)
            for macro, value in MACROS:
                joined = joined.replace(macro, value)
            self.log.append(f"Processing: {joined}")
            expr = _statement(joined, "if")
            if expr is not None:
                if_states.append(_eval(expr))
            elif _statement(joined, "endif") is not None:
                if not if_states:
                    raise Fatal("'endif' without 'if'\n")
                if_states.pop()
            elif _statement(joined, "else") is not None:
                if not if_states:
                    raise Fatal("'else' without 'if'\n")
                if_states[-1] = not if_states[-1]
            elif not if_states or if_states[-1]:
                if len(joined) >= 9 and joined.startswith("include") and joined[7] in WS:
                    self._include(joined[8:], depth + 1)
                    self.where = (name, lineno, line)
                else:
                    self.directive(joined)
        if if_states:
            raise Fatal("if-statement without 'endif'\n")
        self.where = saved

    def _include(self, words: str, depth: int) -> None:
        """``parseManyConfigFiles``: every word globbed first, then each match read in order."""
        if '"' in words or "\\" in words:
            raise Defer("squid -k parse: an include with quotes or backslashes (strwordtok)")
        files: list[str] = []
        for pattern in (w for w in _ISSPACE.split(words) if w):
            found = self._glob(pattern)
            if not found:
                # glob() fails with GLOB_NOMATCH; the errno squid prints is ENOENT's, as measured
                raise Fatal(f"Unable to find configuration file: {pattern}: (2) No such file or directory")
            files += found
        for f in files:
            self.read(f, depth)

    def _glob(self, pattern: str) -> list[str]:
        """glibc ``glob(pattern, 0)`` for ``*`` and ``?``: matches sorted (C locale), hidden
        names only for a component starting with a dot, a plain pattern kept if it exists."""
        if "[" in pattern:
            raise Defer(f"squid -k parse: include pattern {pattern} ('[' classes are not modelled)")
        absolute = pattern.startswith("/")
        parts = [p for p in pattern.split("/") if p]
        results = ["/" if absolute else ""]
        for i, comp in enumerate(parts):
            last = i == len(parts) - 1
            nxt = []
            for base in results:
                d = base or "."
                d = d if d.startswith("/") else posixpath.join(self.cwd, d)
                if "*" in comp or "?" in comp:
                    try:
                        names = sorted(self.fs.readdir(d), key=lambda n: n.encode("utf-8", "surrogateescape"))
                    except OSError:
                        continue
                    rx = re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in comp),
                                    re.S)
                    hits = [n for n in names if rx.fullmatch(n) and (comp.startswith(".") or not n.startswith("."))]
                else:
                    hits = [comp]
                for n in hits:
                    p = posixpath.join(base, n) if base else n
                    full = p if p.startswith("/") else posixpath.join(self.cwd, p)
                    if (not last and self._isdir(full)) or (last and self.fs.lexists(full)):
                        nxt.append(p)
            results = nxt
        return results

    def _isdir(self, p: str) -> bool:
        try:
            return self.fs.stat(p).is_dir
        except OSError:
            return False

    # ---- directives ------------------------------------------------------------------------

    def bungled(self) -> Fatal:
        """``self_destruct()``: the file, line number and physical line being read."""
        f, n, line = self.where
        return Fatal(f"Bungled {f} line {n}: {line}")

    def directive(self, line: str) -> None:
        """``parse_line``: a known name's value checked (or deferred), an unknown one counted."""
        tokens = [t for t in _W_SPACE.split(line) if t]
        name = tokens[0]
        # ConfigParser::TokenParse: a token starting with '#' ends the line's tokens
        args = []
        for t in tokens[1:]:
            if t.startswith("#"):
                break
            args.append(t)
        if name not in KNOWN:
            f, n, _ = self.where
            self.log.append(f"{f}({n}): unrecognized: '{name}'")
            self.errors += 1
            return
        check = self.directives.get(name)
        if check is None:
            raise Defer(f"squid -k parse: directive {name} is not modelled")
        if any(c in a for a in args for c in "\"'"):
            raise Defer(f"squid -k parse: quotes in a {name} line (quoted values and ACL files)")
        check(self, args)


def xstrerr(e: OSError) -> str:
    """squid's ``xstrerr``: ``(errno) text``."""
    return f"({e.errno}) {os.strerror(e.errno)}" if e.errno else str(e)


def _statement(line: str, word: str) -> str | None:
    """``FindStatement``: the rest after ``word`` and white space, or None."""
    s = line.lstrip(WS)
    if not s.startswith(word):
        return None
    rest = s[len(word):]
    if rest == "":
        return rest
    return rest.lstrip(WS) if rest[0] in WS else None


_STRTOL = re.compile(r"[ \t\n\v\f\r]*([+-]?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))")


def _strtoint(s: str) -> int | None:
    """``StrToInt``: ``strtol(s, &end, 0)`` that consumes the whole string, else None."""
    m = _STRTOL.fullmatch(s)
    if not m:
        return None
    sign, hexa, octal, dec = m.groups()
    value = int(hexa, 16) if hexa else int(octal, 8) if octal else int(dec)
    return -value if sign == "-" else value


def _eval(expr: str) -> bool:
    """``EvalBoolExpr``."""
    if expr == "true":
        return True
    if expr == "false":
        return False
    if "=" in expr:
        left, right = expr.split("=", 1)
        left, right = left.rstrip(WS), right.lstrip(WS)
        a, b = _strtoint(left), _strtoint(right)
        if a is None:
            raise Fatal(f"String is not a integer number: '{left}'\n")
        if b is None:
            raise Fatal(f"String is not a integer number: '{right}'\n")
        if max(abs(a), abs(b)) >= 1 << 63:
            raise Defer("squid -k parse: an if-expression number beyond long")
        return a == b
    raise Fatal(f"Unable to evaluate expression '{expr}'\n")
