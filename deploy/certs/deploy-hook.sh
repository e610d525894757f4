#!/bin/sh
# certbot's deploy hook (run once per certificate it issued or renewed, with RENEWED_LINEAGE set):
# put the new certificate where the edge's NGINX reads it (NGINX_TLS_CERT, NGINX_TLS_KEY, as
# rendered by deploy/nginx), on this edge and on every peer edge (EDGE_PEERS, ssh targets), and
# reload NGINX there. A reload starts new workers with the new certificate while the old ones
# finish their requests: no connection is dropped. A pair that fails `nginx -t` is put back.
# Settings come from the environment (the renewal unit reads /etc/app/certs.env).
set -eu

cert=${NGINX_TLS_CERT:-/etc/nginx/tls/edge.crt}
key=${NGINX_TLS_KEY:-/etc/nginx/tls/edge.key}
check=${NGINX_CHECK_COMMAND:-nginx -t -q}
reload=${NGINX_RELOAD_COMMAND:-systemctl reload nginx}
# node_exporter's textfile collector (Debian's default folder): when the installed certificate
# ends, for the CertificateExpiresSoon alert. A failing renewal never runs this hook, so the
# figure stays the old certificate's and the alert comes 14 days before its end.
metrics=${CERT_METRICS_FILE:-/var/lib/prometheus/node-exporter/edge_tls_certificate.prom}

write_metric() {
    [ -d "$(dirname "$metrics")" ] || return 0
    not_after=$(date -d "$(openssl x509 -noout -enddate -in "$cert" | cut -d= -f2)" +%s)
    domain=$(openssl x509 -noout -ext subjectAltName -in "$cert" | sed -n 's/^ *DNS:\([^,]*\).*/\1/p' | head -n 1)
    printf '# HELP edge_tls_certificate_not_after_seconds When the certificate NGINX serves ends.\n# TYPE edge_tls_certificate_not_after_seconds gauge\nedge_tls_certificate_not_after_seconds{domain="%s"} %s\n' \
        "$domain" "$not_after" >"$metrics.new"
    mv -f "$metrics.new" "$metrics"
}

# install_pair CERT KEY: swap the files in with rename (a reader sees the old pair or the new,
# never half a file), check the configuration, reload; on a failed check restore the old pair.
install_pair() {
    umask 077
    # nginx -t does not notice a key of another type than the certificate (OpenSSL keeps it in
    # another slot): compare the public keys first.
    if [ "$(openssl x509 -noout -pubkey -in "$1")" != "$(openssl pkey -pubout -in "$2")" ]; then
        echo "deploy-hook: the key does not belong to the certificate; the old one stays" >&2
        return 1
    fi
    cp "$1" "$cert.new" && cp "$2" "$key.new"
    [ -f "$cert" ] && cp -p "$cert" "$cert.old"
    [ -f "$key" ] && cp -p "$key" "$key.old"
    chmod 0644 "$cert.new" && chmod 0600 "$key.new"
    mv -f "$key.new" "$key" && mv -f "$cert.new" "$cert"
    if ! $check; then
        [ -f "$cert.old" ] && mv -f "$cert.old" "$cert"
        [ -f "$key.old" ] && mv -f "$key.old" "$key"
        echo "deploy-hook: nginx refused the new certificate; the old one stays" >&2
        return 1
    fi
    rm -f "$cert.old" "$key.old"
    $reload
    write_metric
}

if [ "${1:-}" = "--install" ]; then
    # On a peer edge, called over ssh with the pair already copied next to the live files.
    install_pair "$2" "$3"
    rm -f "$2" "$3"
    exit 0
fi

: "${RENEWED_LINEAGE:?certbot sets RENEWED_LINEAGE for its deploy hooks}"

install_pair "$RENEWED_LINEAGE/fullchain.pem" "$RENEWED_LINEAGE/privkey.pem"

status=0
for peer in ${EDGE_PEERS:-}; do
    # The same script on the peer installs the pair there (deploy/certs/README.md).
    # -p keeps privkey.pem's mode (0600) on the copy.
    if scp -pq "$RENEWED_LINEAGE/fullchain.pem" "$peer:$cert.incoming" &&
        scp -pq "$RENEWED_LINEAGE/privkey.pem" "$peer:$key.incoming" &&
        ssh "$peer" "/usr/local/lib/app/cert-deploy-hook.sh --install $cert.incoming $key.incoming"; then
        echo "deploy-hook: $peer serves the new certificate"
    else
        echo "deploy-hook: $peer did not take the new certificate; it keeps the old one" >&2
        status=1
    fi
done
exit $status
