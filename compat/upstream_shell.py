"""Run methods of jumpwire's shell driver with upstream Jumpstarter's
ShellClient, as a test engineer's script does inside `jw shell`, and print
what came back. compat/shell_test.go checks it.

    python compat/upstream_shell.py
"""

from jumpstarter.utils.env import env


def main() -> None:
    with env() as client:
        methods = client.host.call("get_methods")
        print(f"methods={','.join(methods)}", flush=True)
        # Return codes arrive as JSON numbers, which upstream's client (as
        # with upstream's exporter) decodes as floats.
        code = client.host.greet("world", WHO="upstream")
        print(f"greet={int(code)}", flush=True)
        code = client.host.fail()
        print(f"fail={int(code)}", flush=True)


if __name__ == "__main__":
    main()
