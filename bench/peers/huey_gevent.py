"""Huey's consumer with greenlet workers: its docs ask for gevent's monkey-patching before
anything else is imported. Arguments as ``huey_consumer``'s."""

from gevent import monkey

monkey.patch_all()

from huey.bin.huey_consumer import consumer_main  # noqa: E402

if __name__ == "__main__":
    consumer_main()
