"""Check flake.nix without Nix: a syntax check with tree-sitter-nix and the outputs the project relies on.

Usage:
  nix_check.py FILE          parse FILE, report every syntax error with line and column, then check
                             that the flake still provides what docs/operations.md and CI rely on
  nix_check.py --self-test   prove the parser rejects broken Nix (each breakage must be caught)

tree-sitter recovers from errors instead of stopping, so an error shows up as ERROR or MISSING nodes in
the tree; any such node fails the check. This catches syntax, not evaluation errors (a misspelt
attribute, a wrong argument): those need `nix flake check`, which scripts/check-nix runs when Nix exists.
"""

import argparse
import re
import sys

import tree_sitter_nix
from tree_sitter import Language, Parser

PARSER = Parser(Language(tree_sitter_nix.language()))

# What the rest of the repository expects of flake.nix (regexes over the source, comments removed).
REQUIRED = {
    "a dev shell": r"devShells\s*=",
    "packages.default": r"\bdefault\s*=\s*journeyman\b",
    "an image output": r"\bimage\s*=",
    "a Rust build from Cargo.lock": r"buildRustPackage[\s\S]*cargoLock\.lockFile\s*=\s*\./Cargo\.lock",
    "a layered OCI image": r"dockerTools\.(buildLayeredImage|streamLayeredImage)",
    "a non-root image user": r'User\s*=\s*"\$\{toString uid\}',
    "the entrypoint `journeyman run`": r'Cmd\s*=\s*\[\s*"journeyman"\s*"run"\s*\]',
}
DEV_TOOLS = ["cargo", "rustc", "clippy", "rustfmt", "cargo-nextest", "pkg-config", "openssl", "git",
             "kubectl", "python3", "nodejs"]
IMAGE_TOOLS = ["nix", "git", "claude-code", "cacert", "bashInteractive", "coreutils"]


def syntax_errors(source):
    """[(line, column, description)] of every ERROR or MISSING node, 1-based."""
    tree = PARSER.parse(source.encode("utf-8"))
    errors = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_missing:
            errors.append((*_pos(node), f"missing `{node.type}`"))
        elif node.is_error:
            text = node.text.decode("utf-8", "replace").strip().splitlines()
            errors.append((*_pos(node), f"unexpected `{text[0][:40] if text else ''}`"))
        elif node.has_error:
            stack.extend(node.children)
    return sorted(errors)


def _pos(node):
    return node.start_point[0] + 1, node.start_point[1] + 1


def strip_comments(source):
    tree = PARSER.parse(source.encode("utf-8"))
    data = bytearray(source.encode("utf-8"))
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "comment":
            data[node.start_byte:node.end_byte] = b" " * (node.end_byte - node.start_byte)
        stack.extend(node.children)
    return data.decode("utf-8")


def content_problems(source):
    code = strip_comments(source)
    problems = [f"flake.nix no longer provides {what}" for what, rx in REQUIRED.items()
                if not re.search(rx, code)]
    shell = re.search(r"devShells\s*=([\s\S]*)", code)
    image = re.search(r"lib\.image\s*=([\s\S]*?)devShells\s*=", code)
    for where, match, tools in (("the dev shell", shell, DEV_TOOLS), ("the image", image, IMAGE_TOOLS)):
        body = match.group(1) if match else ""
        missing = [t for t in tools if not re.search(r"pkgs\." + re.escape(t) + r"\b(?!-)", body)]
        if missing:
            problems.append(f"{where} lacks {', '.join(missing)}")
    return problems


def check_file(path):
    with open(path, encoding="utf-8") as f:
        source = f.read()
    errors = syntax_errors(source)
    for line, col, what in errors:
        print(f"  FAIL {path}:{line}:{col}: syntax error: {what}")
    if errors:
        print(f"{path}: {len(errors)} syntax errors")
        return 1
    print(f"  ok   {path}: parses ({source.count(chr(10))} lines, tree-sitter-nix)")
    problems = content_problems(source)
    for p in problems:
        print(f"  FAIL {path}: {p}")
    if not problems:
        print(f"  ok   {path}: dev shell tools, packages.default, image output and its contents present")
    return 1 if problems else 0


# (what is broken, a valid snippet, the broken version of it)
BREAKAGES = [
    ("a missing semicolon", "{ a = 1; b = 2; }", "{ a = 1 b = 2; }"),
    ("an unclosed attribute set", "{ a = { b = 1; }; }", "{ a = { b = 1; }; "),
    ("an unterminated string", '{ a = "x"; }', '{ a = "x; }'),
    ("an unterminated indented string", "{ a = ''\n  x\n''; }", "{ a = ''\n  x\n; }"),
    ("a let without in", "let a = 1; in a", "let a = 1; a"),
    ("a lambda without body", "{ f = x: x; }", "{ f = x: ; }"),
    ("a stray closing bracket", "{ a = [ 1 2 ]; }", "{ a = [ 1 2 ]]; }"),
    ("an unclosed interpolation", '{ a = "${b}"; }', '{ a = "${b"; }'),
]


def self_test():
    missed = 0
    for what, good, bad in BREAKAGES:
        if syntax_errors(good):
            missed += 1
            print(f"  MISSED   {what}: the valid form `{good!r}` was rejected")
        elif not syntax_errors(bad):
            missed += 1
            print(f"  MISSED   {what}: `{bad!r}` parsed without error")
        else:
            line, col, desc = syntax_errors(bad)[0]
            print(f"  caught   {what} (at {line}:{col}: {desc})")
    print(f"self-test: {len(BREAKAGES) - missed} breakages caught, {missed} missed")
    return 1 if missed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    status = self_test() if args.self_test else 0
    for path in args.files:
        status |= check_file(path)
    return status


if __name__ == "__main__":
    sys.exit(main())
