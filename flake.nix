{
  # journeyman: the development shell of this repository, the worker binary, and the OCI image the
  # Kubernetes manifests in k8s/ run (docs/operations.md).
  #
  #   nix develop            a shell with the Rust toolchain and every tool scripts/ uses
  #   nix build              the `journeyman` binary (packages.default)
  #   nix build .#image      the container image, a docker-archive tarball in ./result (Linux only)
  #
  # Run `nix flake lock` once and commit flake.lock so every build uses the same nixpkgs.
  description = "journeyman: a stateless worker fleet that turns an OpenProject board into a team of coding agents";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems =
        f:
        lib.genAttrs systems (
          system:
          f (
            import nixpkgs {
              inherit system;
              # claude-code is unfree (Anthropic's commercial terms): allow exactly it, nothing else.
              config.allowUnfreePredicate = pkg: builtins.elem (lib.getName pkg) [ "claude-code" ];
            }
          )
        );

      # The unprivileged user of the image; k8s/base/statefulset.yaml runs as the same uid and gid.
      user = "journeyman";
      uid = 1000;
      gid = 1000;
      home = "/home/${user}";

      cargoToml = lib.importTOML ./Cargo.toml;
    in
    {
      packages = forAllSystems (
        pkgs:
        let
          journeyman = pkgs.rustPlatform.buildRustPackage {
            pname = cargoToml.package.name;
            inherit (cargoToml.package) version;
            # Only what the build reads: edits to docs/, k8s/ or scripts/ do not rebuild the binary.
            src = lib.fileset.toSource {
              root = ./.;
              fileset = lib.fileset.unions [
                ./Cargo.toml
                ./Cargo.lock
                ./src
              ];
            };
            cargoLock.lockFile = ./Cargo.lock;
            # Vendored libgit2 and aws-lc (rustls) are C and build with these; zlib is linked.
            nativeBuildInputs = [
              pkgs.pkg-config
              pkgs.cmake
              pkgs.perl
            ];
            buildInputs = [ pkgs.zlib ];
            # cmake is here for the -sys crates, not to configure this (Cargo) project.
            dontUseCmakeConfigure = true;
            # The test suite needs git, loopback sockets and minutes of build: it runs in CI through
            # scripts/test, not in every image build.
            doCheck = false;
            meta = {
              description = cargoToml.package.description or "journeyman worker";
              mainProgram = "journeyman";
            };
          };
        in
        {
          default = journeyman;
          inherit journeyman;
        }
        // lib.optionalAttrs pkgs.stdenv.isLinux {
          image = self.lib.image pkgs journeyman;
        }
      );

      # The image, as a function so the package set above and a consumer's own nixpkgs can both build it.
      lib.image =
        pkgs: journeyman:
        let
          # Everything on PATH in the container. claude-code is the agent; nix runs `nix develop` in
          # single-user mode (no daemon); git and openssh are for the agent's tools and ssh remotes.
          tools = pkgs.buildEnv {
            name = "journeyman-tools";
            paths = [
              journeyman
              pkgs.claude-code
              pkgs.nix
              pkgs.git
              pkgs.openssh
              pkgs.cacert
              pkgs.bashInteractive
              pkgs.coreutils
              pkgs.findutils
              pkgs.gnugrep
              pkgs.gnused
              pkgs.gnutar
              pkgs.gzip
              pkgs.xz
              pkgs.tini
            ];
            pathsToLink = [
              "/bin"
              "/share"
            ];
          };

          # Single-user Nix as an unprivileged uid under RuntimeDefault seccomp: no build users, and
          # no build sandbox (it needs user namespaces the pod does not get; see statefulset.yaml).
          nixConf = pkgs.writeTextDir "etc/nix/nix.conf" ''
            experimental-features = nix-command flakes
            build-users-group =
            sandbox = false
            # A repository's flake must not add substituters or keys of its own choosing.
            accept-flake-config = false
            max-jobs = auto
          '';

          passwd = pkgs.dockerTools.fakeNss.override {
            extraPasswdLines = [ "${user}:x:${toString uid}:${toString gid}:${user}:${home}:/bin/bash" ];
            extraGroupLines = [ "${user}:x:${toString gid}:" ];
          };

          # The image's content, whose closure the init container copies onto the /nix volume.
          contents = [
            tools
            nixConf
            passwd
            pkgs.dockerTools.caCertificates
            pkgs.dockerTools.usrBinEnv
            pkgs.dockerTools.binSh
          ];
          closure = pkgs.closureInfo { rootPaths = contents; };

          # Run by the `seed-nix` init container with the pod's /nix volume mounted at $1. It copies the
          # store paths of the image's closure the volume lacks (store paths are immutable, so an
          # existing one is never rewritten), registers them in the volume's Nix database, and roots
          # them so an agent's `nix-collect-garbage` cannot delete the worker from under itself.
          seedNix = pkgs.writeShellApplication {
            name = "journeyman-seed-nix";
            runtimeInputs = [
              pkgs.coreutils
              pkgs.findutils
              pkgs.nix
            ];
            text = ''
              dest="''${1:?usage: journeyman-seed-nix DIR (the volume that becomes /nix)}"
              mkdir -p "$dest/store" "$dest/var/nix/gcroots/journeyman" "$dest/var/log/nix"
              # Leftovers of a copy that was interrupted (pod killed mid-seed).
              find "$dest/store" -mindepth 1 -maxdepth 1 -name '.seed-*' \
                -exec chmod -R u+w {} + -exec rm -rf {} +
              copied=0
              while read -r path; do
                name="''${path#/nix/store/}"
                if [ ! -e "$dest/store/$name" ]; then
                  cp -a "$path" "$dest/store/.seed-$name"
                  mv "$dest/store/.seed-$name" "$dest/store/$name"
                  copied=$((copied + 1))
                fi
              done < ${closure}/store-paths
              # The store lives at $dest/store now and at /nix/store once the volume is mounted there.
              NIX_REMOTE="local?real=$dest/store&state=$dest/var/nix&log=$dest/var/log/nix" \
                nix-store --load-db < ${closure}/registration
              ln -sfn ${tools} "$dest/var/nix/gcroots/journeyman/tools"
              echo "journeyman-seed-nix: $copied new store paths copied to $dest, $(wc -l < ${closure}/store-paths) registered"
            '';
          };
        in
        pkgs.dockerTools.buildLayeredImage {
          name = "journeyman";
          tag = journeyman.version;
          contents = contents ++ [ seedNix ];
          # Writable places for `docker run`; in Kubernetes these are volumes (statefulset.yaml).
          extraCommands = ''
            mkdir -p tmp .${home}
            chmod 1777 tmp
          '';
          fakeRootCommands = ''
            chown ${toString uid}:${toString gid} .${home}
          '';
          config = {
            User = "${toString uid}:${toString gid}";
            # tini as PID 1 reaps the orphans of the agent's tools and forwards SIGTERM to journeyman,
            # which then stops claiming and winds down within JOURNEYMAN_SHUTDOWN_GRACE.
            Entrypoint = [
              "${pkgs.tini}/bin/tini"
              "--"
            ];
            Cmd = [
              "journeyman"
              "run"
            ];
            WorkingDir = home;
            Env = [
              "PATH=/bin"
              "HOME=${home}"
              "USER=${user}"
              "SSL_CERT_FILE=/etc/ssl/certs/ca-bundle.crt"
              "NIX_SSL_CERT_FILE=/etc/ssl/certs/ca-bundle.crt"
              "GIT_SSL_CAINFO=/etc/ssl/certs/ca-bundle.crt"
            ];
            ExposedPorts."8080/tcp" = { };
          };
        };

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.cargo
            pkgs.rustc
            pkgs.clippy
            pkgs.rustfmt
            pkgs.rust-analyzer
            pkgs.cargo-nextest
            pkgs.pkg-config
            pkgs.openssl
            pkgs.cmake
            pkgs.perl
            pkgs.zlib
            pkgs.git
            pkgs.kubectl
            pkgs.python3
            pkgs.nodejs
            pkgs.skopeo
          ];
          RUST_SRC_PATH = "${pkgs.rustPlatform.rustLibSrc}";
        };
      });
    };
}
