# notifications: an SNS topic for deployment notices with an e-mail subscription per address.
# Slack and the on_success/on_failure switches are the manager's own (never in Terraform).
# Absent section or no e-mails: nothing.

locals {
  notification_emails = var.notifications == null ? [] : coalesce(var.notifications.emails, [])
}

resource "aws_sns_topic" "notifications" {
  count = length(local.notification_emails) > 0 ? 1 : 0

  name              = "${local.name}-deployments"
  kms_master_key_id = local.kms_key_arn
}

resource "aws_sns_topic_subscription" "notifications_email" {
  for_each = toset(local.notification_emails)

  topic_arn = aws_sns_topic.notifications[0].arn
  protocol  = "email"
  endpoint  = each.value
}
