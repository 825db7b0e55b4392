#pragma once
// Umbrella for ssl/augment/ (filled in as components land).
