#!/usr/bin/env bash
# Makes doctored copies of an ABI description (abidw XML), for the ABI check's own tests: each
# stands for a build in which one thing changed. Reads the XML on stdin, writes it on stdout.
#   doctor.sh drop-function <name>          the function is gone (symbol and declaration)
#   doctor.sh drop-member <struct> <field>  the struct lost that field
#   doctor.sh drop-last-member <struct>     the struct as it was before its last field was added
#   doctor.sh set-enumerator <name> <value> the enumerator has another value
#   doctor.sh drop-enumerator <name>        the enumerator is gone
#   doctor.sh structs <name regex>          lists public structs with fields whose name matches
set -euo pipefail
op=${1:-}
case $op in
  drop-function)
    awk -v f="$2" '
      index($0, "<elf-symbol name='\''" f "'\''") { next }
      index($0, "<function-decl name='\''" f "'\''") { skip = 1 }
      skip { if (index($0, "</function-decl>")) skip = 0; next }
      { print }' ;;
  drop-member)
    # A data-member element is three lines: <data-member>, <var-decl name=...>, </data-member>.
    awk -v s="$2" -v m="$3" '
      index($0, "<class-decl name='\''" s "'\''") && index($0, "size-in-bits") { in_struct = 1 }
      in_struct && index($0, "</class-decl>") { in_struct = 0 }
      in_struct && index($0, "<data-member ") { held = $0; next }
      held != "" { if (index($0, "<var-decl name='\''" m "'\''")) { drop = 1; held = ""; next }
                   print held; held = "" }
      drop { drop = 0; if (index($0, "</data-member>")) next }
      { print }' ;;
  drop-last-member)
    # Two passes over the input: find the struct's last field and its offset, then leave it out
    # and give the struct that offset as its size.
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    cat >"$tmp"
    awk -v s="$2" '
      FNR == NR {
        if (index($0, "<class-decl name='\''" s "'\''") && index($0, "size-in-bits")) { in_struct = 1; start = FNR }
        if (in_struct && index($0, "<data-member ")) { last = FNR; off = $0; sub(/.*layout-offset-in-bits=./, "", off); sub(/[^0-9].*/, "", off) }
        if (in_struct && index($0, "</class-decl>")) { in_struct = 0; done = 1 }
        next
      }
      FNR == start { sub(/size-in-bits=.[0-9]+./, "size-in-bits='\''" off "'\''") }
      FNR >= last && FNR <= last + 2 { next }
      { print }' "$tmp" "$tmp" ;;
  set-enumerator) sed "s/<enumerator name='$2' value='[^']*'/<enumerator name='$2' value='$3'/" ;;
  drop-enumerator) sed "/<enumerator name='$2' /d" ;;
  structs)
    grep -o "<class-decl name='[^']*' size-in-bits='[0-9]*'" | sed "s/<class-decl name='\([^']*\)'.*/\1/" |
      grep -E "$2" | sort -u ;;
  *) echo "usage: $0 drop-function|drop-member|drop-last-member|set-enumerator|drop-enumerator|structs ..." >&2; exit 2 ;;
esac
