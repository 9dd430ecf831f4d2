# Sourced by the scripts here. $S: the scratch folder (default /tmp/tern-hibernation) that
# holds the wolfSSL trees and builds; the sources are this folder's.
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
S=${S:-/tmp/tern-hibernation}
mkdir -p "$S"
