# Shared by the scripts that compare a base revision with the working tree
# (sourced, not run): a temporary git worktree of the base, removed on exit,
# and a release build of each tree in a target directory of its own.
#
# After `revision_setup BASE`: $root (the working tree), $work (a temporary
# directory), $base_rev (the base commit), $tree (the base's worktree), and
# `revision_build TREE OUT TARGET SPEC...` builds each SPEC, `package` or
# `package:binary` (the binary named as its package by default), and copies
# the binaries to OUT.

revision_cleanup_hooks=()

revision_cleanup() {
	local hook
	for hook in "${revision_cleanup_hooks[@]}"; do "$hook" || true; done
	git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || true
	rm -rf "$work"
}

revision_setup() {
	root=$(git rev-parse --show-toplevel)
	cargo=${CARGO:-cargo}
	work=$(mktemp -d)
	tree="$work/base-tree"
	trap revision_cleanup EXIT
	base_rev=$(git -C "$root" rev-parse --verify "$1^{commit}")
	git -C "$root" worktree add --detach "$tree" "$base_rev" >/dev/null
}

# Each tree builds into a target directory of its own: cargo names the
# artifacts of workspace members by their path inside the workspace, so two
# trees sharing one directory would take each other's builds for fresh (and
# the comparison would run one revision twice).
revision_build() {
	local tree=$1 out=$2 target=$3
	shift 3
	local args=() spec
	for spec in "$@"; do args+=(-p "${spec%%:*}"); done
	(cd "$tree" && CARGO_TARGET_DIR="$target" "$cargo" build --release --quiet "${args[@]}")
	mkdir -p "$out"
	for spec in "$@"; do cp "$target/release/${spec#*:}" "$out/"; done
}

# Builds SPEC... at the base (into $work/old) and from the working tree
# (into $work/new).
revision_build_both() {
	echo "building $* at ${base_rev:0:12} and at the working tree" >&2
	revision_build "$tree" "$work/old" "$work/target-base" "$@"
	revision_build "$root" "$work/new" "${CARGO_TARGET_DIR:-$root/target}" "$@"
}
