// Form Post Response Mode: submit the authorization response to the client at once.
document.getElementById("form-post").submit();
