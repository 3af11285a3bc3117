"""Request signing and answer reading of the cloud vendors' APIs (Aliyun, Tencent Cloud)."""
