// The one npm dependency of the page: aws4fetch's SigV4 signer (WebCrypto, no further dependencies).
// build.mjs bundles this entry into static/assets/vendor/sigv4.js; the page imports that file only
// when it signs (rdsgate serve --auth sigv4, or the deployed console with Cognito credentials).
export { AwsClient, AwsV4Signer } from "aws4fetch";
