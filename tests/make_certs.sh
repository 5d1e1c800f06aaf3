#!/bin/sh
# Make the TLS test certificates into DIR (created if missing), with the
# openssl command-line tool. Nothing here is committed: every test run makes
# fresh certificates, so none can expire in the repository.
#
#   ca.pem / ca.key            test CA ("libmllp test CA")
#   server.pem / server.key    CN localhost, SAN DNS:localhost, IP:127.0.0.1
#                              (serverAuth only: refused as a client cert)
#   client.pem / client.key    CN client.example, SAN DNS:client.example
#   mixed.pem / mixed.key      CN Client.Mixed.Example (no SAN)
#   other.pem / other.key      CN intruder.example (a name not allowed)
#   expired.pem / expired.key  CN client.example, valid 2020-01-01..2021-01-01
#   future.pem / future.key    CN client.example, valid 2099-01-01..2100-01-01
#   revoked.pem / revoked.key  CN revoked.example, revoked in crl.pem
#   crl.pem                    CRL of the CA listing revoked.pem
#   rogue-ca.pem               an unrelated CA
#   rogue.pem / rogue.key      CN localhost, SAN localhost, signed by rogue CA
#   nosan.pem / nosan.key      CN localhost without SAN (CN fallback)
#   capath/ca.pem              a CA directory for ca_path
#
# Usage: make_certs.sh DIR
set -eu

dir=${1:?usage: make_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

cat >ca.cnf <<'EOF'
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = .
database = index.txt
new_certs_dir = newcerts
serial = serial
crlnumber = crlnumber
default_md = sha256
default_days = 3650
default_crl_days = 3650
policy = any
unique_subject = no
copy_extensions = copy
[ any ]
commonName = supplied
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid
[ client ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = DNS:client.example
authorityKeyIdentifier = keyid
[ client_nosan ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
[ server_nosan ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid
EOF

rm -rf newcerts index.txt* serial* crlnumber*
mkdir newcerts
: >index.txt
echo 1000 >serial
echo 1000 >crlnumber

q() { "$@" >/dev/null 2>&1 || { echo "make_certs.sh: failed: $*" >&2; "$@"; exit 1; }; }

key() { q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# CA (self-signed, valid from 2020 so the expired cert's dates lie inside)
key ca.key
q openssl req -config ca.cnf -new -x509 -key ca.key -out ca.pem -days 7300 \
	-subj "/CN=libmllp test CA" -extensions v3_ca -sha256

# sign NAME CN EXTENSION [startdate enddate]
sign() {
	key "$1.key"
	q openssl req -config ca.cnf -new -key "$1.key" -out "$1.csr" -subj "/CN=$2"
	if [ $# -ge 5 ]; then
		q openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key \
			-in "$1.csr" -out "$1.pem" -extensions "$3" -notext \
			-startdate "$4" -enddate "$5"
	else
		q openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key \
			-in "$1.csr" -out "$1.pem" -extensions "$3" -notext -days 30
	fi
	rm -f "$1.csr"
}

sign server localhost server
sign nosan localhost server_nosan
sign client client.example client
sign mixed Client.Mixed.Example client_nosan
sign other intruder.example client_nosan
sign expired client.example client 20200101000000Z 20210101000000Z
sign future client.example client 20990101000000Z 21000101000000Z
sign revoked revoked.example client_nosan
q openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -revoke revoked.pem
q openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -gencrl -out crl.pem

# An unrelated CA and a server certificate it signed.
key rogue-ca.key
q openssl req -config ca.cnf -new -x509 -key rogue-ca.key -out rogue-ca.pem \
	-days 30 -subj "/CN=rogue CA" -extensions v3_ca -sha256
key rogue.key
q openssl req -config ca.cnf -new -key rogue.key -out rogue.csr -subj "/CN=localhost"
cat >rogue.ext <<'EOF'
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
EOF
q openssl x509 -req -in rogue.csr -CA rogue-ca.pem -CAkey rogue-ca.key \
	-CAcreateserial -out rogue.pem -days 30 -extfile rogue.ext -sha256
rm -f rogue.csr

# A CA directory (ca_path) holding the test CA only.
mkdir -p capath
cp ca.pem capath/ca.pem

exit 0
