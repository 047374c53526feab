#!/usr/bin/env bash
# The seed guide's steps 1-8 as a user would script them with the AWS CLI — the baseline for bench/provision.py.
# (Plus the queue policy the guide forgets, so that both sides build a pipeline that delivers.)
# Usage: guide_by_hand.sh up|down PREFIX ZIPFILE      with ENDPOINT and REGION in the environment.
set -euo pipefail
action=$1 P=$2 ZIP=${3:-}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
aws() { command aws --endpoint-url "$ENDPOINT" --region "$REGION" --output text "$@"; }
ACCOUNT=$(aws sts get-caller-identity --query Account)

if [[ $action == up ]]; then
  aws dynamodb create-table --table-name "$P-Orders" --billing-mode PAY_PER_REQUEST \
    --attribute-definitions AttributeName=orderId,AttributeType=S --key-schema AttributeName=orderId,KeyType=HASH >/dev/null
  aws dynamodb wait table-exists --table-name "$P-Orders"
  TOPIC=$(aws sns create-topic --name "$P-OrderTopic" --query TopicArn)
  aws sqs create-queue --queue-name "$P-OrderQueueDLQ" >/dev/null
  DLQ_ARN="arn:aws:sqs:$REGION:$ACCOUNT:$P-OrderQueueDLQ"
  printf '{"RedrivePolicy": "{\\"deadLetterTargetArn\\":\\"%s\\",\\"maxReceiveCount\\":\\"3\\"}"}' "$DLQ_ARN" >"$work/attrs.json"
  Q_URL=$(aws sqs create-queue --queue-name "$P-OrderQueue" --attributes "file://$work/attrs.json" --query QueueUrl)
  Q_ARN="arn:aws:sqs:$REGION:$ACCOUNT:$P-OrderQueue"
  printf '{"Policy": "{\\"Version\\":\\"2012-10-17\\",\\"Statement\\":[{\\"Effect\\":\\"Allow\\",\\"Principal\\":{\\"Service\\":\\"sns.amazonaws.com\\"},\\"Action\\":\\"sqs:SendMessage\\",\\"Resource\\":\\"%s\\",\\"Condition\\":{\\"ArnEquals\\":{\\"aws:SourceArn\\":\\"%s\\"}}}]}"}' "$Q_ARN" "$TOPIC" >"$work/policy.json"
  aws sqs set-queue-attributes --queue-url "$Q_URL" --attributes "file://$work/policy.json"
  aws sns subscribe --topic-arn "$TOPIC" --protocol sqs --notification-endpoint "$Q_ARN" >/dev/null
  echo '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >"$work/trust.json"
  ROLE_ARN=$(aws iam create-role --role-name "$P-ProcessOrderFunction-role" --assume-role-policy-document "file://$work/trust.json" --query Role.Arn)
  for pair in "DynamoPutItemPolicy dynamodb:PutItem arn:aws:dynamodb:$REGION:$ACCOUNT:table/$P-Orders" \
              "SQSDeleteMessagePolicy sqs:DeleteMessage $Q_ARN" \
              "SQSGetQueueAttributesPolicy sqs:GetQueueAttributes $Q_ARN" \
              "SQSReceiveMessagePolicy sqs:ReceiveMessage $Q_ARN"; do
    read -r name action_name resource <<<"$pair"
    printf '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"%s","Resource":"%s"}]}' "$action_name" "$resource" >"$work/p.json"
    aws iam put-role-policy --role-name "$P-ProcessOrderFunction-role" --policy-name "$name" --policy-document "file://$work/p.json"
  done
  aws lambda create-function --function-name "$P-ProcessOrderFunction" --runtime python3.13 --handler index.lambda_handler \
    --architectures x86_64 --role "$ROLE_ARN" --zip-file "fileb://$ZIP" \
    --environment "Variables={TABLE_NAME=$P-Orders}" >/dev/null
  aws lambda wait function-active-v2 --function-name "$P-ProcessOrderFunction"
  aws lambda create-event-source-mapping --function-name "$P-ProcessOrderFunction" --event-source-arn "$Q_ARN" \
    --batch-size 10 --function-response-types ReportBatchItemFailures >/dev/null
else
  for uuid in $(aws lambda list-event-source-mappings --function-name "$P-ProcessOrderFunction" --query 'EventSourceMappings[].UUID'); do
    aws lambda delete-event-source-mapping --uuid "$uuid" >/dev/null
  done
  aws lambda delete-function --function-name "$P-ProcessOrderFunction"
  for name in DynamoPutItemPolicy SQSDeleteMessagePolicy SQSGetQueueAttributesPolicy SQSReceiveMessagePolicy; do
    aws iam delete-role-policy --role-name "$P-ProcessOrderFunction-role" --policy-name "$name"
  done
  aws iam delete-role --role-name "$P-ProcessOrderFunction-role"
  aws sqs delete-queue --queue-url "$(aws sqs get-queue-url --queue-name "$P-OrderQueue" --query QueueUrl)"
  aws sqs delete-queue --queue-url "$(aws sqs get-queue-url --queue-name "$P-OrderQueueDLQ" --query QueueUrl)"
  aws sns delete-topic --topic-arn "arn:aws:sns:$REGION:$ACCOUNT:$P-OrderTopic"
  aws dynamodb delete-table --table-name "$P-Orders" >/dev/null
  aws dynamodb wait table-not-exists --table-name "$P-Orders"
fi
