# Copyright: (c) 2026, ODP platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  s3_endpoint_url:
    description:
      - URL of the S3-compatible service holding the checkpoints, for example C(https://oss.odp.om).
        Path-style addressing is used whenever it is set.
      - If not set, the environment variables E(AWS_ENDPOINT_URL_S3) or E(AWS_ENDPOINT_URL) are used.
    type: str
  s3_access_key:
    description:
      - Access key id. If not set, E(AWS_ACCESS_KEY_ID) or the usual boto3 credential chain is used.
      - Like the secret key it is never logged (C(no_log)), not even at C(-vvv).
    type: str
    aliases: [aws_access_key_id]
  s3_secret_key:
    description:
      - Secret access key. If not set, E(AWS_SECRET_ACCESS_KEY) or the usual boto3 credential chain is used.
    type: str
    aliases: [aws_secret_access_key]
  s3_session_token:
    description:
      - Session token for temporary credentials. If not set, E(AWS_SESSION_TOKEN) is used.
    type: str
  s3_region:
    description:
      - Region name sent in request signatures. If not set, E(AWS_REGION) or E(AWS_DEFAULT_REGION) is used.
    type: str
    default: us-east-1
  s3_ca_bundle:
    description:
      - PEM bundle of the CA that signed the S3 endpoint's certificate. If not set, E(AWS_CA_BUNDLE) is used.
    type: path
  s3_validate_certs:
    description:
      - Verify the S3 endpoint's TLS certificate.
    type: bool
    default: true
notes:
  - Requests are signed without the CRC checksums boto3 1.36 and later add by default
    (C(request_checksum_calculation=when_required)), which third-party S3 servers often reject.
requirements:
  - boto3
"""
