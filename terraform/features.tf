# features: flags that each add one managed service. A false flag asks for nothing.
# enable_queue: an SQS queue with a dead-letter queue.
# enable_cache: an ElastiCache Redis node in the private subnets, with TLS in transit and AUTH.

locals {
  feature_queue = var.features == null ? false : coalesce(lookup(var.features, "enable_queue", null), false)
  feature_cache = var.features == null ? false : coalesce(lookup(var.features, "enable_cache", null), false)
}

resource "aws_sqs_queue" "features_dead_letter" {
  count = local.feature_queue ? 1 : 0

  name                      = "${local.name}-queue-dlq"
  message_retention_seconds = 1209600
  kms_master_key_id         = local.kms_key_arn
}

resource "aws_sqs_queue" "features" {
  count = local.feature_queue ? 1 : 0

  name              = "${local.name}-queue"
  kms_master_key_id = local.kms_key_arn
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.features_dead_letter[0].arn
    maxReceiveCount     = 5
  })

  lifecycle {
    # SQS hands the policy back in its own JSON spacing (moto: `{"a": 1}`), which the aws
    # provider 3.x compares as text: a change on every plan. Its content never changes (the
    # dead-letter queue's name, and so its ARN, is fixed), so Terraform only sets it at creation.
    ignore_changes = [redrive_policy]
  }
}

resource "aws_elasticache_subnet_group" "features" {
  count = local.feature_cache ? 1 : 0

  name       = "${lower(local.name)}-cache"
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_security_group" "features_cache" {
  count = local.feature_cache ? 1 : 0

  name        = "${local.name}-cache"
  description = "Redis of ${local.name}"
  vpc_id      = aws_vpc.main.id

  # From the application when there is a compute section, else from inside the VPC.
  ingress {
    description     = "Redis clients"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = local.compute_enabled ? [local.app_security_group_id] : null
    cidr_blocks     = local.compute_enabled ? null : [var.vpc_cidr]
  }

  tags = {
    Name = "${local.name}-cache"
  }
}

# One Redis node as a replication group: only a group takes TLS in transit and an AUTH token. The
# token is made inside Terraform like the database's password and kept in Secrets Manager beside
# the endpoint; no output shows it. Clients connect with TLS (rediss://) and the token.
resource "terraform_data" "features_cache_auth" {
  count = local.feature_cache ? 1 : 0
}

resource "aws_elasticache_replication_group" "features" {
  count = local.feature_cache ? 1 : 0

  # At most 40 characters, no trailing or doubled hyphen.
  replication_group_id          = "${trim(replace(substr(lower(local.name), 0, 34), "/-+/", "-"), "-")}-cache"
  replication_group_description = "Redis of ${local.name}"
  engine                        = "redis"
  # aws provider 3.x accepts "6.x" (which it cannot read back from every stand-in) or an exact
  # version up to 5.x: the last Redis 5 keeps plans clean everywhere.
  engine_version        = "5.0.6"
  node_type             = "cache.t3.micro"
  number_cache_clusters = 1
  port                  = 6379
  subnet_group_name     = aws_elasticache_subnet_group.features[0].name
  security_group_ids    = [aws_security_group.features_cache[0].id]

  at_rest_encryption_enabled = true
  kms_key_id                 = local.kms_key_arn
  transit_encryption_enabled = true
  auth_token                 = terraform_data.features_cache_auth[0].id
  snapshot_retention_limit   = 1
}

locals {
  cache_address = one(aws_elasticache_replication_group.features[*].primary_endpoint_address)
}

resource "aws_secretsmanager_secret" "features_cache" {
  count = local.feature_cache ? 1 : 0

  name_prefix = "${local.name}-cache-"
  description = "AUTH token of the ${local.name} Redis"
  kms_key_id  = local.kms_key_arn
}

resource "aws_secretsmanager_secret_version" "features_cache" {
  count = local.feature_cache ? 1 : 0

  secret_id = aws_secretsmanager_secret.features_cache[0].id
  secret_string = jsonencode({
    host       = local.cache_address
    port       = 6379
    tls        = true
    auth_token = terraform_data.features_cache_auth[0].id
  })
}
