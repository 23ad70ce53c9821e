# The reporter image: nothing but the static `cmdreporter` binary at /cmdreporter.
# The Job's init container runs `/cmdreporter install /var/run/cmdreporter/cmdreporter`,
# so the image needs no shell, no libc and no `cp`.
#
# Build the binary first (this file holds no toolchain), from the workspace root:
#   RUSTFLAGS='-C target-feature=+crt-static' \
#     cargo build --release --target x86_64-unknown-linux-gnu -p cmdreporter-cli
# then:
#   docker build -t ghcr.io/cmdreporter/cmdreporter:0.1.0 .
# (With CARGO_TARGET_DIR set, copy the binary to the path below first.)
FROM scratch
COPY target/x86_64-unknown-linux-gnu/release/cmdreporter /cmdreporter
# Numeric, so that the kubelet can check `runAsNonRoot: true` without an /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/cmdreporter"]
