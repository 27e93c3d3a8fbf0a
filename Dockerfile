# flinkguard's container image: the gateway side-car that `flinkguard render k8s` and
# `flinkguard render operator` put next to Flink's JobManager.
#
#   docker build -t registry.example.org/flinkguard:0.1.0 .
#
# Then set kubernetes.gateway_image in flinkguard.yaml to that reference (pin it by digest).
# Two stages: the build needs a Rust toolchain and a C compiler (aws-lc); the image needs
# neither. It holds one binary on distroless (glibc, CA certificates, no shell, no package
# manager) and runs as an unprivileged user. crates/cli/tests/container_image.rs checks that
# the binary needs no library beyond what this base image has, and that it is installed
# where the rendered pods run it.

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# --locked: exactly the dependency versions the tests ran with.
RUN cargo build --release --locked --package flinkguard \
 && install -D --mode 0555 target/release/flinkguard /out/flinkguard

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/flinkguard /usr/local/bin/flinkguard
# distroless's "nonroot" user; the rendered pods also set runAsUser/runAsNonRoot.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/flinkguard"]
CMD ["gateway", "--config", "/etc/flinkguard/config/flinkguard.yaml"]
