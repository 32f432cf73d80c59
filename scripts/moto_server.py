"""moto server with the fixes the daemon's SDK needs, for tests and the demo.

moto 5.2.5 answers GetBucketVersioning, and GetBucketNotificationConfiguration of a bucket
without notifications, with the root elements <GetBucketVersioningResponse> and
<GetBucketNotificationResponse/>; S3 (and so the Rust SDK's parser) uses
<VersioningConfiguration> and <NotificationConfiguration>.

Given a KeyMarker without a VersionIdMarker, ListObjectVersions in S3 lists the keys after the
marker. moto takes the marker for the previous page's last key: it lists that key's versions
but its first, or, when no such key exists, drops the first version after the marker. The
sweep's target-driven walk starts listings at such markers, so the wrapper restates a bare
KeyMarker as the last version at or before it (a key and version marker, which moto reads as
S3 does). Everything else is moto's.
Run as: .venv/bin/python scripts/moto_server.py -H 127.0.0.1 -p PORT
"""

import sys
from xml.sax.saxutils import escape

from moto.core.utils import unix_time_millis
from moto.s3.models import S3Backend
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


_list_object_versions = S3Backend.list_object_versions


def list_object_versions(
    self,
    bucket_name,
    delimiter=None,
    key_marker=None,
    max_keys=1000,
    prefix="",
    version_id_marker=None,
):
    if key_marker is not None and not version_id_marker and not delimiter:
        bucket = self.get_bucket(bucket_name)
        # moto's own order (by key, newest first; a stable sort), up to the marker.
        before = sorted(
            (v for _, versions in bucket.keys.iterlists() for v in versions if v.name <= key_marker),
            key=lambda v: (v.name, -unix_time_millis(v.last_modified)),
        )
        if before:
            key_marker, version_id_marker = before[-1].name, before[-1].version_id
        else:
            key_marker = None
    return _list_object_versions(
        self, bucket_name, delimiter, key_marker, max_keys, prefix, version_id_marker
    )


S3Backend.list_object_versions = list_object_versions
S3Response.get_bucket_versioning = get_bucket_versioning
S3Response.get_bucket_notification = get_bucket_notification

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())
