"""moto server with the fixes the daemon's SDK needs, for tests and the demo.

moto 5.2.5 answers GetBucketVersioning, and GetBucketNotificationConfiguration of a bucket
without notifications, with the root elements <GetBucketVersioningResponse> and
<GetBucketNotificationResponse/>; S3 (and so the Rust SDK's parser) uses
<VersioningConfiguration> and <NotificationConfiguration>. Everything else is moto's.
Run as: .venv/bin/python scripts/moto_server.py -H 127.0.0.1 -p PORT
"""

import sys
from xml.sax.saxutils import escape

from moto.s3.responses import S3Response
from moto.server import main

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def get_bucket_versioning(self):
    status = self.backend.get_bucket_versioning(self.bucket_name)
    return xml("VersioningConfiguration", f"<Status>{escape(status)}</Status>" if status else "")


def xml(root, inner=""):
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NS}">{inner}</{root}>'
    return 200, {"Content-Type": "application/xml"}, body


_notification = S3Response.get_bucket_notification


def get_bucket_notification(self):
    if not self.backend.get_bucket_notification_configuration(self.bucket_name):
        return xml("NotificationConfiguration")
    return _notification(self)


S3Response.get_bucket_versioning = get_bucket_versioning
S3Response.get_bucket_notification = get_bucket_notification

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())
